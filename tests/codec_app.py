"""An App with a Fernet codec for the CLI to load (tests/test_codecs.py)."""

from __future__ import annotations

import durable
from durable.codecs import Compress, Fernet

K1 = b"q8pMd1lC2cMfA1-7tYt2oU0uCzBv8Xg3Lh5y5w4kH0s="
"""A fixed test key: the CLI process must build the same App."""

app = durable.App(codec=[Compress(threshold=64), Fernet(K1)])
