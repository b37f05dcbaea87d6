"""Transport failures in plain words, for callers and logs.

Never an exception's ``repr`` or ``args``: an HTTP client's errors can carry the request they
belong to, headers and vendor keys included (aiohttp's ``WSServerHandshakeError`` does). What
may be said of a failure is its kind, the vendor's host and a status, worded here.
"""

from __future__ import annotations

import errno
import ssl
from urllib.parse import urlsplit

import aiohttp

from lowart.security.ssrf import ForbiddenDestination

# Checked in order: the first class the failure (or the OS error behind a failed connect) is.
_WORDS: tuple[tuple[type[BaseException], str], ...] = (
    (aiohttp.ClientConnectorCertificateError, "the TLS certificate of {host} was not trusted"),
    (aiohttp.ClientSSLError, "the TLS handshake with {host} failed"),
    (ssl.SSLError, "the TLS handshake with {host} failed"),
    (aiohttp.ClientConnectorDNSError, "the name of {host} could not be resolved"),
    (ForbiddenDestination, "{host} is not an allowed destination"),
    (ConnectionRefusedError, "connection refused by {host}"),
    (ConnectionResetError, "connection reset by {host}"),
    (aiohttp.WSServerHandshakeError, "{host} refused the websocket handshake (status {status})"),
    (aiohttp.ClientResponseError, "{host} answered with status {status}"),
    (aiohttp.ServerDisconnectedError, "{host} closed the connection"),
    (aiohttp.ClientPayloadError, "the answer from {host} was cut off"),
    (TimeoutError, "{host} did not answer in time"),
)


def host_of(url: str) -> str:
    """``host:port`` of a URL, never its user info, path or query."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or "the upstream"
    return f"{host}:{port}" if port else host


def status_of(exc: BaseException) -> int | None:
    """The HTTP status a client error carries (a refused websocket handshake's, say)."""
    return exc.status if isinstance(exc, aiohttp.ClientResponseError) else None


def describe(exc: BaseException, url: str) -> str:
    """What went wrong talking to ``url``'s host, in words: "connection refused by h:p"."""
    subject: BaseException = exc
    host = host_of(url)
    if isinstance(exc, aiohttp.ClientConnectorError):
        host = f"{exc.host}:{exc.port}"
        if type(exc) is aiohttp.ClientConnectorError:  # the OS error says why
            subject = exc.os_error
    if isinstance(subject, OSError) and subject.errno == errno.ECONNRESET:
        return f"connection reset by {host}"
    for kind, words in _WORDS:
        if isinstance(subject, kind):
            return words.format(host=host, status=status_of(subject))
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"could not connect to {host}"
    return f"the connection to {host} failed"
