"""Serve the review app with uvicorn: loopback by default; any other address needs a token."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

from leukoscope.config import Settings
from leukoscope.errors import ParameterError, StorageError

LOOPBACK_NAMES = ("localhost",)
TOKEN_MIN = 16


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, port: int, token: str | None) -> None:
    """ParameterError unless the address is usable: a port 1-65535, and off loopback a token of
    at least 16 characters."""
    if not 0 < port < 65536:
        raise ParameterError(f"--port must be 1-65535, got {port}")
    try:
        if host not in LOOPBACK_NAMES:
            ipaddress.ip_address(host)
    except ValueError:
        raise ParameterError(f"--host must be an IP address or localhost, got {host!r}") from None
    if token is not None and len(token) < TOKEN_MIN:
        raise ParameterError(f"the access token must have at least {TOKEN_MIN} characters")
    if not is_loopback(host) and token is None:
        raise ParameterError(
            f"--host {host} is reachable from other machines: give an access token "
            "(--token or LEUKOSCOPE_REVIEW_TOKEN)"
        )


def check_port(host: str, port: int) -> None:
    """StorageError (one line) when nothing can listen on host:port (in use, not allowed)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise StorageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(
    database: Path,
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
) -> None:
    """Run the review app until interrupted."""
    import uvicorn

    from leukoscope.review.app import create_app

    check_bind(host, port, token)
    check_port(host, port)
    hosts = None if not is_loopback(host) else ["127.0.0.1", "localhost", "[::1]", host]
    app = create_app(database, settings, access_token=token, allowed_hosts=hosts)
    app.state.service.prepared.start()  # pictures of samples analysed before, in the background
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        app.state.service.close()
