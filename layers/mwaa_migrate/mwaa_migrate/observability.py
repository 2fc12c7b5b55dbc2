"""Logger, tracer and metrics, created once. The service name comes from POWERTOOLS_SERVICE_NAME."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def bind_execution(execution_id: str, source: str, target: str) -> None:
    """Put the execution and both environments into every later log line of this invocation."""
    logger.append_keys(execution_id=execution_id, source_environment=source, target_environment=target)
