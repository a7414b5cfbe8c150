"""HTTP plumbing shared by the adapters: default timeouts and redirecting an SDK's host to a local server.

SDKs such as tweepy and facebook-sdk hard-code their API host and send no timeout. Mount a
`RewritingAdapter` on the SDK's `requests.Session` for that host: every request then gets a timeout,
and, when `base_url` is set (an emulator, a recording proxy), its scheme, host and port are replaced
by those of `base_url` (a path in `base_url` is put in front of the request's path).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)  # (connect, read) seconds


class RewritingAdapter(HTTPAdapter):
    """An HTTPAdapter that applies a default timeout and optionally sends requests to `base_url`."""

    def __init__(self, base_url: str | None = None, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.timeout = timeout
        self._target = urlsplit(base_url.rstrip("/")) if base_url else None
        if self._target is not None and (not self._target.scheme or not self._target.netloc):
            raise ValueError(f"base_url must look like http://host:port, got {base_url!r}")

    def rewrite(self, url: str) -> str:
        """The URL a request for `url` is actually sent to."""
        if self._target is None:
            return url
        parts = urlsplit(url)
        return urlunsplit((self._target.scheme, self._target.netloc, self._target.path + parts.path,
                           parts.query, parts.fragment))

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        if timeout is None:
            timeout = self.timeout
        if self._target is not None and request.url is not None:
            request.url = self.rewrite(request.url)
            proxies = {}  # proxies were chosen for the original host
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert,
                            proxies=proxies)


def mount_rewriter(session: requests.Session, hosts: list[str], base_url: str | None,
                   timeout: float | tuple[float, float] = DEFAULT_TIMEOUT) -> RewritingAdapter:
    """Mount one RewritingAdapter on `session` for each of `hosts` (e.g. "https://api.twitter.com")."""
    adapter = RewritingAdapter(base_url, timeout)
    for host in hosts:
        session.mount(host.rstrip("/") + "/", adapter)
    return adapter
