"""CURVE authentication and encryption of tcp endpoints (a stack split across launches or hosts).

One key pair, in a file only its owner can read, is shared by every launch of a split stack: each publisher is
a CURVE server with the secret key, each subscriber a CURVE client that expects the server's public key and
presents the same pair, and a ZAP handler in every process admits only clients holding that pair. Whoever does
not have the file can neither read, nor write, nor stand in for a missing half of the stack. ipc endpoints
need none of this: they live in a directory only the user may enter (`bus.ipc_root`).

The file is `$DRIVESTACK_BUS_KEY`, else `~/.config/drivestack/bus.key`; `launch` creates it (mode 0600, in a
0700 directory) the first time a tcp stack starts, and refuses one that others could read or that belongs to
someone else. Copy it to the other hosts of a split stack as you would an ssh key (docs/security.md).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import zmq

KEY_ENV = "DRIVESTACK_BUS_KEY"
ZAP_DOMAIN = "drivestack"


class KeyFileError(RuntimeError):
    """The key file is missing, unreadable, malformed, or readable by others."""


def default_key_path() -> Path:
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV])
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "drivestack" / "bus.key"


def _check_private(path: Path, kind: str) -> None:
    st = os.lstat(path)
    wanted = stat.S_ISDIR if kind == "directory" else stat.S_ISREG
    problem = None
    if not wanted(st.st_mode):
        problem = f"is not a {kind} (a link or something else)"
    elif st.st_uid != os.getuid():
        problem = f"belongs to uid {st.st_uid}, not to you (uid {os.getuid()})"
    elif st.st_mode & (0o022 if kind == "directory" else 0o077):
        problem = f"has mode {stat.S_IMODE(st.st_mode):04o}: others may " + (
            "replace what is in it" if kind == "directory" else "read it (must be 0600)")
    if problem:
        raise KeyFileError(f"the bus key {kind} {path} {problem}; fix it (chmod, or remove it to make a new key)")


def load_keys(path: Path, create: bool = False) -> tuple[bytes, bytes]:
    """(public, secret) Z85 keys from `path`; with `create`, a new pair is written there if it does not exist."""
    if create and not os.path.lexists(path):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        public, secret = zmq.curve_keypair()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another launch of the stack made it at the same moment: use theirs
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(b"# drivestack bus key (ZeroMQ CURVE); keep it private\npublic " + public + b"\nsecret "
                        + secret + b"\n")
    if not os.path.lexists(path):
        raise KeyFileError(f"no bus key at {path}: copy it from the host that started the other half of the "
                           f"stack (or set {KEY_ENV})")
    _check_private(path.parent, "directory")
    _check_private(path, "file")
    keys = {}
    for line in path.read_bytes().splitlines():
        name, _, value = line.partition(b" ")
        if name in (b"public", b"secret"):
            keys[name] = value.strip()
    if set(keys) != {b"public", b"secret"} or any(len(v) != 40 for v in keys.values()):
        raise KeyFileError(f"the bus key file {path} is not a drivestack key (want 'public' and 'secret' lines)")
    return keys[b"public"], keys[b"secret"]


class BusSecurity:
    """A CURVE key pair applied to sockets; `start(ctx)` runs the handler that admits only this pair."""

    def __init__(self, public: bytes, secret: bytes) -> None:
        self.public, self.secret = public, secret
        self.refused = 0  # connections refused by the ZAP handler (another key)
        self._auth = None

    @classmethod
    def from_file(cls, path: str | Path) -> BusSecurity:
        return cls(*load_keys(Path(path)))

    def serve(self, sock: zmq.Socket) -> None:
        """Make a socket that binds a CURVE server (call before bind)."""
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public)
        sock.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN.encode())

    def connect_as_client(self, sock: zmq.Socket) -> None:
        """Make a socket that connects a CURVE client of our servers (call before connect)."""
        sock.setsockopt(zmq.CURVE_SERVERKEY, self.public)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret)

    def callback(self, domain: str, client_key: bytes) -> bool:
        if client_key == self.public:
            return True
        self.refused += 1
        if self.refused <= 3:
            logging.getLogger("drivestack.bus").warning(
                "refused a tcp connection whose CURVE key is not this stack's bus key (%d so far)", self.refused)
        return False

    def start(self, ctx: zmq.Context) -> None:
        """Admit only clients presenting this key pair to the servers of `ctx` (a ZAP handler thread)."""
        from zmq.auth.thread import ThreadAuthenticator

        self._auth = ThreadAuthenticator(ctx, log=_quiet_log())
        self._auth.start()
        self._auth.configure_curve_callback(domain=ZAP_DOMAIN, credentials_provider=self)

    def stop(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None


def _quiet_log():  # noqa: ANN202
    log = logging.getLogger("drivestack.zap")
    log.setLevel(logging.WARNING)
    return log


def secure_client(sock: zmq.Socket, endpoints: list[str]) -> None:
    """For a tool that connects to a running stack's endpoints: CURVE with the user's key when they are tcp (a
    KeyFileError says why it cannot); nothing for ipc."""
    if any(e.startswith("tcp://") for e in endpoints):
        BusSecurity.from_file(default_key_path()).connect_as_client(sock)
