"""The exception tree every layer raises; each class knows its HTTP status and OpenAI type/code.

    SwapgateError
    ├── BadRequest              400 invalid_request_error
    │   └── BodyTooLarge        413
    ├── Unauthorized            401
    ├── Forbidden               403 (the key lacks the endpoint's scope)
    ├── OriginNotAllowed        403 (a browser page of another origin)
    ├── ModelNotFound           404
    ├── EndpointNotFound        404
    ├── MethodNotAllowed        405 (carries the methods the path allows)
    ├── UnsupportedMediaType    415
    ├── MisdirectedRequest      421 (a Host that does not name this server)
    ├── ConcurrencyLimited      429
    ├── RateLimited             429 (a key's requestsPerMinute)
    ├── UpstreamError           502 (refused, reset, died before answering)
    │   └── UpstreamTimeout     504
    └── Unavailable             503
        ├── BackendStartFailed  (exited during startup, health timeout, bad cmd)
        ├── BackendFailed       (crash loop: back-off not elapsed)
        ├── QueueTimeout        (waited queueTimeout for the model)
        ├── ModelUnloaded       (unloaded while the request waited for it)
        ├── ConfigChanged       (reloaded while the request waited: it is decided again)
        └── ShuttingDown
    ConfigError                 (not an HTTP error: a list of Issue records)

Imports nothing from the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus


class SwapgateError(Exception):
    """Base of every error that reaches a client as an OpenAI-shaped envelope."""

    status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR
    error_type: str = "server_error"
    code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BadRequest(SwapgateError):
    """The request itself is wrong: malformed JSON, no `model`, bad form data."""

    status = HTTPStatus.BAD_REQUEST
    error_type = "invalid_request_error"
    code = "invalid_request"


class BodyTooLarge(BadRequest):
    """The body is over `maxRequestBytes`."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "request_too_large"


class Unauthorized(SwapgateError):
    """apiKeys are configured and the request carries none of them."""

    status = HTTPStatus.UNAUTHORIZED
    error_type = "invalid_request_error"
    code = "invalid_api_key"


class Forbidden(SwapgateError):
    """The request's key is valid but lacks the scope the endpoint needs."""

    status = HTTPStatus.FORBIDDEN
    error_type = "permission_error"
    code = "insufficient_scope"


class ModelNotFound(SwapgateError):
    """No configured model, alias or route answers to the requested name."""

    status = HTTPStatus.NOT_FOUND
    error_type = "invalid_request_error"
    code = "model_not_found"


class EndpointNotFound(SwapgateError):
    """No endpoint at that method and path."""

    status = HTTPStatus.NOT_FOUND
    error_type = "invalid_request_error"
    code = "not_found"


class OriginNotAllowed(SwapgateError):
    """A browser request from a page of another origin that `cors.allowOrigins` does not list."""

    status = HTTPStatus.FORBIDDEN
    error_type = "permission_error"
    code = "origin_not_allowed"


class MethodNotAllowed(SwapgateError):
    """The path exists but not with this method; `allow` lists the methods it takes."""

    status = HTTPStatus.METHOD_NOT_ALLOWED
    error_type = "invalid_request_error"
    code = "method_not_allowed"

    def __init__(self, message: str, *, allow: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allow = allow


class UnsupportedMediaType(SwapgateError):
    """The body's Content-Type is not one the endpoint reads (JSON, or multipart uploads)."""

    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    error_type = "invalid_request_error"
    code = "unsupported_media_type"


class MisdirectedRequest(SwapgateError):
    """The Host header names another server (DNS rebinding, or a name not in allowedHosts)."""

    status = HTTPStatus.MISDIRECTED_REQUEST
    error_type = "invalid_request_error"
    code = "host_not_allowed"


class ConcurrencyLimited(SwapgateError):
    """The model already serves (or queues) `concurrencyLimit` requests."""

    status = HTTPStatus.TOO_MANY_REQUESTS
    error_type = "rate_limit_error"
    code = "concurrency_limit"
    retry_after_s: float | None = 1.0


class RateLimited(SwapgateError):
    """The request's key used up its `requestsPerMinute`; `retry_after_s` says when a
    request is allowed again."""

    status = HTTPStatus.TOO_MANY_REQUESTS
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UpstreamError(SwapgateError):
    """The upstream server refused the connection or died before answering."""

    status = HTTPStatus.BAD_GATEWAY
    error_type = "upstream_error"
    code = "upstream_unreachable"


class UpstreamTimeout(UpstreamError):
    """The upstream server accepted the request but did not answer in time."""

    status = HTTPStatus.GATEWAY_TIMEOUT
    code = "upstream_timeout"


class Unavailable(SwapgateError):
    """The model cannot serve right now; retrying later may work."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    error_type = "server_error"
    code = "unavailable"
    retry_after_s: float | None = None


class BackendStartFailed(Unavailable):
    """The model's server exited during startup or never became healthy."""

    code = "backend_start_failed"


class BackendFailed(Unavailable):
    """The model's server keeps failing; swapgate waits before trying again."""

    code = "backend_failed"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class QueueTimeout(Unavailable):
    """The request waited `queueTimeout` seconds for its model and was let go."""

    code = "queue_timeout"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ModelUnloaded(Unavailable):
    """The model was unloaded while the request waited for it."""

    code = "model_unloaded"


class ConfigChanged(Unavailable):
    """The config was reloaded while the request waited in the queue. The handler decides
    the request again against the new config; a client sees this only when reloads keep
    coming faster than the request can be placed. `arrived` keeps its place in the queue."""

    code = "config_reloaded"

    def __init__(self, message: str, *, arrived: float | None = None) -> None:
        super().__init__(message)
        self.arrived = arrived
        self.retry_after_s = 1.0


class ShuttingDown(Unavailable):
    """swapgate is stopping and takes no new work."""

    code = "shutting_down"


@dataclass(frozen=True, slots=True)
class Issue:
    """One config problem or warning at a YAML path (`models.qwen.ttl`), with its line if known."""

    path: str
    message: str
    line: int | None = None
    file: str | None = None

    def render(self) -> str:
        where = self.file or "config"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    """A config that cannot be used; carries every problem found, in document order."""

    def __init__(self, issues: list[Issue], source: str = "config") -> None:
        self.issues = issues
        self.source = source
        count = len(issues)
        head = f"{source}: {count} problem{'s' if count != 1 else ''}"
        super().__init__("\n".join([head, *(issue.render() for issue in issues)]))
