"""The emulator's answers on the wire: MWAA's error shape (`x-amzn-ErrorType` and the model's status,
so botocore raises its modeled exceptions) and JSON responses."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# HTTP status of each error code when a fault is injected without one (the model's, or AWS's common ones).
DEFAULT_STATUS = {
    "ThrottlingException": 429,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
    "AccessDeniedException": 403,
    "ValidationException": 400,
    "ResourceNotFoundException": 404,
}


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or DEFAULT_STATUS.get(code, 400)


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})


def error_response(error: ApiError) -> Response:
    # The model names the member "Message" on AccessDeniedException and "message" elsewhere.
    key = "Message" if error.code == "AccessDeniedException" else "message"
    response = json_response({key: error.message}, error.status)
    response.headers["x-amzn-ErrorType"] = error.code
    return response


def validation_error(message: str) -> ApiError:
    return ApiError("ValidationException", message)


def json_body(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        raise ApiError("SerializationException", "The request body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise ApiError("SerializationException", "The request body must be a JSON object")
    return parsed
