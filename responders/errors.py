"""The errors of the responders' services: an action refused, with a message for the person who asked.

They hang under `models.errors.OpenEarError` (the whole tree is drawn there). Each carries the HTTP
status the web app answers with, so routes never keep their own exception-to-status tables, and the
CLI prints any of them as one line with exit code 2.
"""

from __future__ import annotations

from models.errors import OpenEarError


class ServiceError(OpenEarError):
    """An action the service refuses; str() is the message for the person."""

    status = 400


class NotFound(ServiceError):
    """The mention, item, customer, user or reply asked for does not exist."""

    status = 404


class NotAllowed(ServiceError):
    """The user's role does not allow the action."""

    status = 403


class Invalid(ServiceError):
    """The input is wrong or the thing is in a state that does not allow the action."""

    status = 422


class Conflict(ServiceError):
    """Someone else holds the thing or changed it a moment ago."""

    status = 409


class Busy(ServiceError):
    """Refused for now; `retry_after` seconds later it may work."""

    status = 503

    def __init__(self, message: str, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def status_of(exc: Exception) -> int:
    """The HTTP status for a refusal (400 for anything that is not a ServiceError)."""
    return exc.status if isinstance(exc, ServiceError) else 400
