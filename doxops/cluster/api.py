"""A small client of the Kubernetes REST API over TLS with the admin client certificate (stdlib only).

Enough for the harness and its assertions: get, list, create, merge/strategic/JSON
patches, status patches, delete, and a watch that yields events. Errors carry the
API server's own ``Status`` message (``ApiError.message``), so a test can assert on
exactly what the server said.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


class ApiError(Exception):
    """A non-2xx answer: the HTTP status, the server's reason and message."""

    def __init__(self, status: int, reason: str, message: str, method: str, path: str) -> None:
        super().__init__(f"{method} {path}: {status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


def _loopback_only(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname or ""
    if not (host == "localhost" or host.startswith("127.")):
        raise ValueError(f"refusing to dial {host!r}: the e2e harness talks to 127.0.0.0/8 only")


class Api:
    """``Api("https://127.0.0.1:PORT", ca, cert, key)``; paths are absolute API paths."""

    def __init__(self, server: str, ca: Path, cert: Path, key: Path, timeout: float = 30.0) -> None:
        _loopback_only(server)
        self.server = server.rstrip("/")
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=str(ca))
        self.context.load_cert_chain(str(cert), str(key))

    # ------------------------------------------------------------------ plumbing

    def _url(self, path: str, query: dict | None = None) -> str:
        url = self.server + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        return url

    def request(self, method: str, path: str, body: Any = None, *, query: dict | None = None,
                content_type: str = "application/json", timeout: float | None = None) -> Any:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(self._url(path, query), data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=timeout or self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                status = json.loads(raw)
                message, reason = status.get("message", ""), status.get("reason", exc.reason)
            except ValueError:
                message, reason = raw.decode(errors="replace").strip(), exc.reason
            raise ApiError(exc.code, str(reason), message, method, path) from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    # ------------------------------------------------------------------ verbs

    def get(self, path: str, **query) -> Any:
        return self.request("GET", path, query=query or None)

    def get_or_none(self, path: str) -> Any:
        try:
            return self.get(path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def items(self, path: str, **query) -> list[dict]:
        return self.get(path, **query).get("items") or []

    def create(self, path: str, body: dict, **query) -> Any:
        return self.request("POST", path, body, query=query or None)

    def patch(self, path: str, body: Any, kind: str = MERGE, **query) -> Any:
        return self.request("PATCH", path, body, query=query or None, content_type=kind)

    def delete(self, path: str, **query) -> Any:
        return self.request("DELETE", path, query=query or None)

    def exists(self, path: str) -> bool:
        return self.get_or_none(path) is not None

    def wait_for(self, what: str, check, timeout: float, interval: float = 0.5):
        """Poll ``check()`` until it returns something truthy; ``TimeoutError`` naming ``what``."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            try:
                result = check()
                if result:
                    return result
            except (ApiError, OSError) as exc:
                last_error = exc
            if time.monotonic() > deadline:
                note = f" (last error: {last_error})" if last_error else ""
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}{note}")
            time.sleep(interval)

    def open_watch(self, path: str, resource_version: str, *, timeout: float = 300.0, **query):
        """The open response of ``GET path?watch=1`` from ``resource_version``: one JSON event per line.

        :func:`events` reads it; :func:`end_watch` ends it from any thread.
        """
        params = {"watch": "1", "resourceVersion": resource_version, "timeoutSeconds": str(int(timeout)), **query}
        request = urllib.request.Request(self._url(path, params), method="GET")
        request.add_header("Accept", "application/json")
        return urllib.request.urlopen(request, context=self.context, timeout=timeout + 10)


def end_watch(response) -> None:
    """End a watch another thread is reading: shut its socket down (closing the buffered reader
    instead would wait for that thread's blocked read to return)."""
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


def events(response) -> Iterator[dict]:
    """Events of an open watch response until the stream ends or is closed."""
    while True:
        try:
            line = response.readline()
        except (socket.timeout, TimeoutError, ssl.SSLError, OSError, ValueError, AttributeError):
            return
        if not line:
            return
        yield json.loads(line)
