"""Endpoint security: loopback by default, CurveZMQ keys required for any other bind address.

Keys are ZeroMQ certificate files (`zmq.auth.create_certificates`: text, no pickle). The central
process holds the server secret key; every worker host holds its own key pair (`keys generate
--worker NAME`) and the server's public key, and sources and subscribers the shared client pair.
The public keys in the server key's folder are the allow-list: a peer whose key is not there can
neither push work nor read results, and each allowed key is known by its file's name (`NAME.key`):
that name is the peer's ZAP User-Id, the identity the aggregator checks answers against.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.auth
import zmq.auth.thread
from zmq.utils import z85

from leukoscope.atomic import check_target
from leukoscope.errors import SecurityError

KEYGEN_HINT = (
    "make keys with `leukoscope keys generate DIR` and set pipeline.curve_server_key and "
    "pipeline.curve_client_key in the config"
)


@dataclass(frozen=True)
class CurveKeys:
    """Key material of one side: its own key pair and, for a client, the server's public key."""

    public: bytes
    secret: bytes
    server_public: bytes

    @classmethod
    def load(cls, secret_file: Path, server_public_file: Path | None = None) -> CurveKeys:
        """Read a `.key_secret` certificate (and, for a client, the server's `.key`)."""
        try:
            public, secret = zmq.auth.load_certificate(str(secret_file))
            server_public = public
            if server_public_file is not None:
                server_public, _ = zmq.auth.load_certificate(str(server_public_file))
        except (OSError, ValueError) as exc:
            raise SecurityError(f"cannot read CurveZMQ key: {exc}") from None
        if secret is None:
            raise SecurityError(f"{secret_file} holds no secret key (use the .key_secret file)")
        return cls(public=public, secret=secret, server_public=server_public)


KEY_FILES = ("server.key", "server.key_secret", "client.key", "client.key_secret")


def generate_keys(folder: Path, *, force: bool = False) -> tuple[Path, Path]:
    """Create a server and a client certificate pair in `folder`; the two secret-key paths.

    Existing key files are never replaced without `force`: new keys lock out every worker that
    holds the old ones. Secret files are written with mode 0600.
    """
    existing = [folder / name for name in KEY_FILES if (folder / name).exists()]
    if existing and not force:
        raise SecurityError(
            f"{folder} already holds keys ({', '.join(p.name for p in existing)}); new keys would "
            "lock out every worker using them: pass --force to replace them"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name in KEY_FILES:  # a link, FIFO or device in the key folder is refused
            check_target(folder / name)
        _, server_secret = zmq.auth.create_certificates(str(folder), "server")
        _, client_secret = zmq.auth.create_certificates(str(folder), "client")
        for path in folder.glob("*.key_secret"):
            path.chmod(0o600)
    except OSError as exc:
        raise SecurityError(f"cannot write keys to {folder}: {exc.strerror or exc}") from None
    return Path(server_secret), Path(client_secret)


WORKER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RESERVED_NAMES = frozenset({"server", "client"})


def generate_worker_key(folder: Path, name: str, *, force: bool = False) -> Path:
    """Create worker host `name`'s own key pair in the server's key folder (which allows it); the
    secret-key path, to copy to that host only. Never replaces a key without `force`."""
    if not WORKER_NAME.match(name) or name.lower() in RESERVED_NAMES:
        raise SecurityError(
            f"worker key name {name!r}: use 1-64 letters, digits, '.', '_' or '-' (not "
            f"{' or '.join(sorted(RESERVED_NAMES))})"
        )
    existing = [folder / f"{name}{ext}" for ext in (".key", ".key_secret")]
    if any(p.exists() for p in existing) and not force:
        raise SecurityError(
            f"{folder} already holds a key for {name}; a new one locks that worker out: pass "
            "--force to replace it"
        )
    if not (folder / "server.key").is_file():
        raise SecurityError(f"{folder} holds no server key: run `leukoscope keys generate` first")
    try:
        for path in existing:
            check_target(path)
        _, secret = zmq.auth.create_certificates(str(folder), name)
        Path(secret).chmod(0o600)
    except OSError as exc:
        raise SecurityError(f"cannot write keys to {folder}: {exc.strerror or exc}") from None
    return Path(secret)


def allow_list(folder: Path) -> dict[bytes, str]:
    """Each allowed public key (z85) in `folder` (every `NAME.key` but the server's) -> NAME."""
    allowed = {}
    for path in sorted(folder.glob("*.key")):
        if path.stem == "server":
            continue
        try:
            public, _ = zmq.auth.load_certificate(str(path))
        except (OSError, ValueError):
            continue
        allowed[public] = path.stem
    return allowed


class NamedAuthenticator(zmq.auth.thread.ThreadAuthenticator):
    """ZAP for the central process: allows the keys of `allow_list(folder)` and gives each peer
    the name of its key file as User-Id (the frames' metadata carry it to the aggregator)."""

    def __init__(self, context: zmq.Context[Any], folder: Path) -> None:
        super().__init__(context)
        self.names = allow_list(folder)
        self.folder = folder

    def start(self) -> None:
        """Start answering ZAP requests: only the allow-listed keys get in."""
        super().start()
        self.configure_curve(domain="*", location=str(self.folder))

    def curve_user_id(self, client_public_key: bytes) -> str:
        """The allowed key's name (the z85 key itself for a key added after the start)."""
        z85_key = z85.encode(client_public_key)
        return self.names.get(z85_key) or z85_key.decode("ascii")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, keys: CurveKeys | None) -> None:
    """Refuse to bind a non-loopback address without CurveZMQ keys."""
    if keys is None and not is_loopback(host):
        raise SecurityError(f"refusing to bind {host} without CurveZMQ keys: {KEYGEN_HINT}")


def secure_server(sock: zmq.Socket[Any], keys: CurveKeys | None) -> None:
    """Make a bound socket a CURVE server (no-op without keys)."""
    if keys is not None:
        sock.curve_secretkey = keys.secret
        sock.curve_publickey = keys.public
        sock.curve_server = True


def secure_client(sock: zmq.Socket[Any], keys: CurveKeys | None) -> None:
    """Make a connecting socket a CURVE client of the server (no-op without keys)."""
    if keys is not None:
        sock.curve_secretkey = keys.secret
        sock.curve_publickey = keys.public
        sock.curve_serverkey = keys.server_public
