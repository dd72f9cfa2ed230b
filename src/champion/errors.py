"""One exception tree for champion, each class carrying its HTTP status.

::

    ChampionError (500)
    ├── BadRequest (400)
    │   ├── InvalidJSON (400)
    │   ├── InvalidInput (400)        data that does not fit the function
    │   └── DeployError (400)         unpicklable value, unimportable package
    ├── Unauthorized (401)
    ├── Forbidden (403)               a dashboard session without its CSRF token
    ├── NotFound (404)
    ├── MethodNotAllowed (405)
    ├── Conflict (409)
    ├── PayloadTooLarge (413)
    ├── UnsupportedMediaType (415)
    ├── TooManyRequests (429)         over a rate limit; Retry-After says when to retry
    ├── ModelError (500)              the user's function raised
    ├── WorkerCrashed (502)           the worker process died mid-request
    │   ├── AnswerTooLarge (502)      the model's answer is over max_answer_bytes
    │   └── OutOfMemory (502)         the model passed its worker's memory limit
    ├── Unavailable (503)
    │   └── Unreachable (503)         client side: no server answered at that address
    ├── ModelTimeout (504)            the function ran past its timeout
    └── InsufficientStorage (507)     the store's disk is full: nothing was stored

The server turns any of them into the one JSON error shape
``{"error": {"type": ..., "message": ..., "request_id": ...}}``; the client maps the
status and type back to the same classes; the CLI prints them as one line.
"""

from __future__ import annotations

from typing import Any


class ChampionError(Exception):
    """Base of every error champion raises on purpose."""

    status_code: int = 500
    type_name: str = "internal_error"
    #: True for errors raised on the client's side without any answer from a server.
    local: bool = False

    def __init__(self, message: str, *, request_id: str | None = None, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        """The one JSON error shape."""
        body: dict[str, Any] = {"type": self.type_name, "message": self.message}
        if self.request_id is not None:
            body["request_id"] = self.request_id
        for key, value in self.detail.items():
            body.setdefault(key, value)  # detail never overrides type, message, request_id
        return {"error": body}


class BadRequest(ChampionError):
    status_code = 400
    type_name = "bad_request"


class InvalidJSON(BadRequest):
    type_name = "invalid_json"


class InvalidInput(BadRequest):
    type_name = "invalid_input"


class DeployError(BadRequest):
    type_name = "deploy_error"


class Unauthorized(ChampionError):
    status_code = 401
    type_name = "unauthorized"


class Forbidden(ChampionError):
    status_code = 403
    type_name = "forbidden"


class NotFound(ChampionError):
    status_code = 404
    type_name = "not_found"


class MethodNotAllowed(ChampionError):
    status_code = 405
    type_name = "method_not_allowed"


class Conflict(ChampionError):
    status_code = 409
    type_name = "conflict"


class PayloadTooLarge(ChampionError):
    status_code = 413
    type_name = "payload_too_large"


class UnsupportedMediaType(ChampionError):
    status_code = 415
    type_name = "unsupported_media_type"


class TooManyRequests(ChampionError):
    status_code = 429
    type_name = "rate_limited"

    def __init__(self, message: str, *, retry_after: int | None = None,
                 **detail: Any) -> None:
        if retry_after is not None:
            detail["retry_after"] = retry_after
        super().__init__(message, **detail)
        self.headers = {"Retry-After": str(retry_after or 1)}


class ModelError(ChampionError):
    status_code = 500
    type_name = "model_error"


class WorkerCrashed(ChampionError):
    status_code = 502
    type_name = "worker_crashed"


class AnswerTooLarge(WorkerCrashed):
    type_name = "answer_too_large"


class OutOfMemory(WorkerCrashed):
    type_name = "out_of_memory"


class Unavailable(ChampionError):
    status_code = 503
    type_name = "unavailable"


class Unreachable(Unavailable):
    """No server answered: refused, unknown host, timed out connecting (client side)."""

    type_name = "unreachable"
    local = True


class ModelTimeout(ChampionError):
    status_code = 504
    type_name = "timeout"


class InsufficientStorage(ChampionError):
    status_code = 507
    type_name = "insufficient_storage"


ALL_ERRORS: tuple[type[ChampionError], ...] = (
    ChampionError,
    BadRequest,
    InvalidJSON,
    InvalidInput,
    DeployError,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    ModelError,
    WorkerCrashed,
    AnswerTooLarge,
    OutOfMemory,
    Unavailable,
    Unreachable,
    ModelTimeout,
    InsufficientStorage,
)

_BY_TYPE = {cls.type_name: cls for cls in ALL_ERRORS}


def error_from_response(status: int, body: Any) -> ChampionError:
    """Rebuild the exception a server answered with (used by the client)."""
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(body, dict) and isinstance(body.get("champion_error"), dict):
        err = body["champion_error"]  # the Modelbit-compatible route's body
    if not isinstance(err, dict):
        cls = next((c for c in ALL_ERRORS if c.status_code == status), ChampionError)
        return cls(f"HTTP {status}: {str(body)[:200]}")
    found = _BY_TYPE.get(str(err.get("type")))
    cls = found if found is not None and found.status_code == status else next(
        (c for c in ALL_ERRORS if c.status_code == status), ChampionError
    )
    extra = {k: v for k, v in err.items() if k not in ("type", "message", "request_id")}
    message = err.get("message")
    exc = cls("" if message is None else str(message), request_id=err.get("request_id"),
              **extra)
    return exc
