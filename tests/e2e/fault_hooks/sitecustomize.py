"""A migration held still where a test wants to kill it (imported by Python at start-up).

The fault suite starts ``rating-service migrate`` or ``serve`` with this directory on
PYTHONPATH and FAULT_PAUSE_BEFORE set to a regular expression. The FAULT_PAUSE_NTH-th
(default: first) statement of a migration that it matches does not run: the process
writes the file FAULT_PAUSED and sleeps until the test kills it. A statement of a
migration is DDL or a write of ``alembic_version``, the revision stamp. Without
FAULT_PAUSE_BEFORE this does nothing.
"""

from __future__ import annotations

import os

if os.environ.get("FAULT_PAUSE_BEFORE"):
    import re
    import time
    from pathlib import Path
    from typing import Any

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    _MIGRATION = re.compile(
        r"\s*(CREATE|ALTER|DROP|(INSERT INTO|UPDATE|DELETE FROM) alembic_version)\b", re.I
    )
    _target = re.compile(os.environ["FAULT_PAUSE_BEFORE"], re.I)
    _nth = int(os.environ.get("FAULT_PAUSE_NTH") or 1)
    _seen = 0

    @event.listens_for(Engine, "before_cursor_execute")
    def _hold(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        global _seen
        if not (_MIGRATION.match(statement) and _target.search(statement)):
            return
        _seen += 1
        if _seen == _nth:
            Path(os.environ["FAULT_PAUSED"]).write_text(statement)
            while True:
                time.sleep(60)
