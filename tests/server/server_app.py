"""The App a server subprocess runs a worker for: no handlers, so every SERVICE_TASK of the
test definitions becomes an external job."""

from __future__ import annotations

import durable

app = durable.App()
