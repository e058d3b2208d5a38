"""The exception tree every layer raises; each class knows its HTTP status and OpenAI type/code.

    SwapgateError
    ├── BadRequest              400 invalid_request_error
    │   └── BodyTooLarge        413
    ├── Unauthorized            401
    ├── ModelNotFound           404
    ├── EndpointNotFound        404
    ├── ConcurrencyLimited      429
    ├── UpstreamError           502 (refused, reset, died before answering)
    │   └── UpstreamTimeout     504
    └── Unavailable             503
        ├── BackendStartFailed  (exited during startup, health timeout, bad cmd)
        ├── BackendFailed       (crash loop: back-off not elapsed)
        ├── QueueTimeout        (waited queueTimeout for the model)
        ├── ModelUnloaded       (unloaded while the request waited for it)
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


class ConcurrencyLimited(SwapgateError):
    """The model already serves (or queues) `concurrencyLimit` requests."""

    status = HTTPStatus.TOO_MANY_REQUESTS
    error_type = "rate_limit_error"
    code = "concurrency_limit"
    retry_after_s: float | None = 1.0


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
