"""Logger, tracer and metrics, created once. The service name comes from POWERTOOLS_SERVICE_NAME.

The tracer is made when a module first imports it (the handlers do): making it loads X-Ray's SDK,
which makes a client of its own, half a second that the `mwaa-migrate` command, which shares the
layer's logic and its logger but traces nothing, would pay on every start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

    tracer: Tracer

logger = Logger()
metrics = Metrics()


def __getattr__(name: str) -> Any:
    if name == "tracer":
        from aws_lambda_powertools import Tracer  # noqa: PLC0415  # the docstring says why

        made = globals()["tracer"] = Tracer()
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def bind_execution(execution_id: str, source: str, target: str) -> None:
    """Put the execution and both environments into every later log line of this invocation."""
    logger.append_keys(execution_id=execution_id, source_environment=source, target_environment=target)
