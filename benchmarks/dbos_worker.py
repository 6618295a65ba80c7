"""A DBOS process for the benchmark (W4, W5): launches DBOS and serves its queue.

    python benchmarks/dbos_worker.py URL SCHEMA|- [--w5=WORKFLOW_ID:N] [--executor=ID] READY_FILE

With ``--w5``, it starts W5's workflow of N steps itself (so that a relaunch recovers it).
With ``--executor`` (W9) it runs under that executor id: a process started again under the
id of a dead one recovers the dead one's workflows.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dbos_app


def main() -> None:
    url, schema, ready = sys.argv[1], sys.argv[2], sys.argv[-1]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    executor = [a[len("--executor=") :] for a in sys.argv[3:-1] if a.startswith("--executor=")]
    extra = {"executor_id": executor[0]} if executor else {}
    dbos_app.launch(url, None if schema == "-" else schema, queue=True, **extra)
    w5 = [a for a in sys.argv[3:-1] if a.startswith("--w5=")]
    if w5:
        workflow_id, n = w5[0][len("--w5=") :].rsplit(":", 1)
        with dbos_app.SetWorkflowID(workflow_id):
            dbos_app.DBOS.start_workflow(dbos_app.long_journal, int(n))
    Path(ready).write_text("ready")
    stop.wait()
    dbos_app.DBOS.destroy(workflow_completion_timeout_sec=0)


if __name__ == "__main__":
    main()
