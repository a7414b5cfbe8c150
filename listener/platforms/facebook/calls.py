"""Running facebook-sdk calls for one Graph adapter (Facebook pages, Instagram accounts): the response
hook that keeps what facebook-sdk drops (status, usage headers), and the translation of every
failure into the `PlatformError` family (errors.translate for Graph errors; timeouts, broken bodies
and connection errors as Transient). Messages never contain a token."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

import facebook
import requests

from listener.platforms.base import PlatformError, Transient
from listener.platforms.facebook import errors

T = TypeVar("T")


class GraphCalls:
    """One adapter's call runner: `remember` goes on its sessions' response hooks, `run` wraps each call."""

    def __init__(self, service: errors.Service, clock: Callable[[], datetime], secrets: Iterable[str]) -> None:
        self.service, self.clock = service, clock
        self._last = threading.local()  # status and headers of this thread's last answer
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Session response hook: keep the status and usage headers facebook-sdk throws away."""
        self._last.status = response.status_code
        self._last.headers = response.headers

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def run(self, what: str, owner_id: str, fn: Callable[[], T], writing: bool = False) -> T:
        """Run SDK interactions as the token of `owner_id` (a page or an Instagram account); failures
        become PlatformError subclasses saying `what` was being done."""
        name = self.service.name
        self._last.status, self._last.headers = None, None
        try:
            return fn()
        except PlatformError:
            raise
        except facebook.GraphAPIError as exc:
            raise errors.translate(exc, what, owner_id, writing=writing, status=getattr(self._last, "status", None),
                                   headers=getattr(self._last, "headers", None), now=self.clock(),
                                   scrub=self.scrub, service=self.service) from exc
        except requests.Timeout as exc:
            raise Transient(f"{name} did not answer in time while {what}") from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # JSON decode errors included
            raise Transient(f"{name} answered with a malformed body while {what}: {type(exc).__name__}") from exc
        except requests.RequestException as exc:  # connection errors, broken or truncated bodies
            raise Transient(f"{name} request failed while {what}: {type(exc).__name__}") from exc
