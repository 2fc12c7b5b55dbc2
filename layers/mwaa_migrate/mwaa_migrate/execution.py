"""Step Functions executions: their names and the clock the run's records use."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

# Step Functions' limit on an execution's name.
EXECUTION_NAME_LIMIT = 80
# Executions that `plan` starts: listings of migrations skip them.
DRY_RUN_PREFIX = "dryrun-"
# 48 random bits: two starts in the same millisecond still get different names.
_SUFFIX_BYTES = 6


def now() -> datetime:
    return datetime.now(UTC)


def execution_name(execution_id: str) -> str:
    """arn:aws:states:...:execution:machine:NAME -> NAME."""
    return execution_id.rsplit(":", 1)[-1]


def new_execution_name(source: str, target: str, *, prefix: str = "", at: datetime | None = None) -> str:
    """PREFIX + SOURCE-to-TARGET-YYYYMMDDTHHMMSSmmmZ-RANDOM, within Step Functions' 80 characters.

    Names sort by time (to the millisecond) and never collide: Step Functions refuses a second
    execution with a closed one's name, so two starts within one second must differ. Environment
    names are shortened, never the stamp or the random part."""
    moment = at or now()
    stamp = moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"
    tail = f"-{stamp}-{secrets.token_hex(_SUFFIX_BYTES)}"
    room = EXECUTION_NAME_LIMIT - len(prefix) - len(tail) - len("-to-")
    source = source[: max(room // 2, room - len(target))]
    target = target[: room - len(source)]
    return f"{prefix}{source}-to-{target}{tail}"
