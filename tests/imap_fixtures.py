"""A private Dovecot IMAP server for the tests of IMAP polling (``tests/conftest.py`` makes the
``imap_server`` fixture available to every test module).

One server per test session, in a temporary folder of its own: its own ``base_dir``,
configuration file and log, listening on 127.0.0.1 on free ports (plain IMAP with STARTTLS,
and IMAP over TLS with a self-signed certificate made for the run), passwd-file users with
plaintext logins allowed, Maildir mailboxes in the temporary folder. It runs in the foreground
as a child of the test process (``dovecot -F``) and is stopped at the end: no system service
is used or touched. Run as root, its login and internal processes use the unprivileged users
Debian's package creates (``dovenull``, ``dovecot``), and the mail user is ``dovecot``
(Dovecot refuses to serve mail as root); run as another user, everything runs as that user.

Without Dovecot (``apt-get install dovecot-imapd``) the tests are skipped, except under
``CI=true``, where they fail (``.ci/run`` installs it).
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import itertools
import os
import pwd
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
USER = "helpdesk"
PASSWORD = "s3cret-imap"  # a test server's, on 127.0.0.1 only
_STARTUP_SECONDS = 20.0
_mailboxes = itertools.count(1)


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it under ``CI=true`` (where Dovecot must be there)."""
    if IN_CI:
        pytest.fail(f"{reason}: under CI=true the IMAP tests must run (.ci/run installs Dovecot)")
    pytest.skip(reason)


def dovecot_binary() -> str | None:
    """The ``dovecot`` program, if installed (Debian puts it in /usr/sbin)."""
    found = shutil.which("dovecot")
    if found:
        return found
    return "/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ImapServer:
    """A running private Dovecot: where it listens, who may log in, and helpers to fill it."""

    host: str
    port: int
    """Plain IMAP (STARTTLS offered)."""
    tls_port: int
    """IMAP over TLS (``imaps``)."""
    user: str
    password: str
    cafile: Path
    """The server's self-signed certificate (trust it to verify the TLS connections)."""
    root: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def connect(self) -> imaplib.IMAP4:
        """A logged-in plain connection (close it with ``logout()``)."""
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        client.login(self.user, self.password)
        return client

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts (only) this server's certificate."""
        return ssl.create_default_context(cafile=str(self.cafile))

    def new_mailbox(self, prefix: str = "T") -> str:
        """Create a mailbox no other test uses, and return its name."""
        name = f"{prefix}{next(_mailboxes)}_{secrets.token_hex(3)}"
        with self.session() as client:
            _ok(client.create(name), f"CREATE {name}")
        return name

    @contextlib.contextmanager
    def session(self) -> Iterator[imaplib.IMAP4]:
        """A logged-in connection, logged out after the block."""
        client = self.connect()
        try:
            yield client
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                client.logout()

    def append(self, mailbox: str, raw: bytes, *, flags: str | None = None) -> int:
        """APPEND ``raw`` to ``mailbox``; return the UID the server gave it (UIDPLUS)."""
        with self.session() as client:
            typ, data = client.append(mailbox, flags, None, raw)
            _ok((typ, data), f"APPEND to {mailbox}")
        match = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
        assert match, f"no APPENDUID in {data!r}"
        return int(match.group(1))

    def uidvalidity(self, mailbox: str) -> int:
        """The mailbox's current UIDVALIDITY."""
        with self.session() as client:
            typ, data = client.status(_quoted(mailbox), "(UIDVALIDITY)")
            _ok((typ, data), f"STATUS {mailbox}")
        match = re.search(rb"UIDVALIDITY (\d+)", data[0] or b"")
        assert match, f"no UIDVALIDITY in {data!r}"
        return int(match.group(1))

    def recreate(self, mailbox: str) -> int:
        """Delete and create ``mailbox`` again (emptied, with a new UIDVALIDITY); return it."""
        before = self.uidvalidity(mailbox)
        with self.session() as client:
            _ok(client.delete(_quoted(mailbox)), f"DELETE {mailbox}")
            _ok(client.create(_quoted(mailbox)), f"CREATE {mailbox}")
        after = self.uidvalidity(mailbox)
        assert after != before, "Dovecot kept the UIDVALIDITY of a recreated mailbox"
        return after

    def uids(self, mailbox: str) -> list[int]:
        """The UIDs of the messages in ``mailbox``, ascending."""
        with self.session() as client:
            _ok(client.select(_quoted(mailbox), readonly=True), f"SELECT {mailbox}")
            typ, data = client.uid("SEARCH", "ALL")
            _ok((typ, data), "UID SEARCH")
        return sorted(int(n) for n in (data[0] or b"").split())

    def flags(self, mailbox: str, uid: int) -> set[str]:
        """The flags of message ``uid`` in ``mailbox``."""
        with self.session() as client:
            _ok(client.select(_quoted(mailbox), readonly=True), f"SELECT {mailbox}")
            typ, data = client.uid("FETCH", str(uid), "(FLAGS)")
            _ok((typ, data), "UID FETCH FLAGS")
        text = b" ".join(d for d in data if isinstance(d, bytes)).decode()
        match = re.search(r"FLAGS \(([^)]*)\)", text)
        assert match, f"no FLAGS in {text!r}"
        return set(match.group(1).split())

    def log(self) -> str:
        """The server's log so far (what to read when a test fails)."""
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _quoted(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ok(answer: tuple[str, Sequence[object]], what: str) -> None:
    typ, data = answer
    assert typ == "OK", f"{what}: {typ} {data!r}"


def _ids() -> tuple[str, str, int, int]:
    """(login user, internal user, mail uid, mail gid) for the server's processes."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid()).pw_name
        return me, me, os.geteuid(), os.getegid()
    try:
        internal = pwd.getpwnam("dovecot")
        pwd.getpwnam("dovenull")
    except KeyError:
        unavailable("running as root, but the users dovecot and dovenull do not exist")
    return "dovenull", "dovecot", internal.pw_uid, internal.pw_gid


def _config(root: Path, port: int, tls_port: int, login: str, internal: str) -> str:
    group = grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name
    return f"""\
# A private Dovecot for helpkit's tests (tests/imap_fixtures.py); not a system service.
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_internal_group = {group}
default_login_user = {login}
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/passwd
}}
"""


def _certificate(root: Path) -> None:
    done = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(root / "key.pem"),
            "-out",
            str(root / "cert.pem"),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        unavailable(f"openssl could not make a certificate: {done.stderr.decode()[-300:]}")


def _answers(port: int, context: ssl.SSLContext | None = None) -> bool:
    """Whether an IMAP greeting comes from ``port`` (over TLS with ``context``)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.settimeout(2)
            if context is None:
                return conn.recv(64).startswith(b"* OK")
            with context.wrap_socket(conn, server_hostname="127.0.0.1") as tls:
                return tls.recv(64).startswith(b"* OK")
    except OSError:
        return False


def start_dovecot(root: Path) -> ImapServer:
    """Configure and start a private Dovecot under ``root``; return it once it answers."""
    binary = dovecot_binary()
    if binary is None:
        unavailable("Dovecot is not installed (apt-get install dovecot-imapd)")
    if shutil.which("openssl") is None:
        unavailable("openssl is not installed")
    login, internal, uid, gid = _ids()
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir(parents=True)
    root.chmod(0o755)  # the login and mail processes traverse it
    os.chown(root / "mail", uid, gid)
    _certificate(root)
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{root}/mail/{USER}::\n")
    port, tls_port = free_port(), free_port()
    while tls_port == port:
        tls_port = free_port()
    conf = root / "dovecot.conf"
    conf.write_text(_config(root, port, tls_port, login, internal))
    output = (root / "dovecot.out").open("wb")
    process = subprocess.Popen(
        [binary, "-F", "-c", str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    output.close()
    server = ImapServer(
        host="127.0.0.1",
        port=port,
        tls_port=tls_port,
        user=USER,
        password=PASSWORD,
        cafile=root / "cert.pem",
        root=root,
        process=process,
    )
    deadline = time.monotonic() + _STARTUP_SECONDS
    while not (_answers(port) and _answers(tls_port, server.ssl_context())):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_dovecot(server)
            said = (root / "dovecot.out").read_text(errors="replace") + server.log()
            message = f"Dovecot did not start on 127.0.0.1:{port}: {said[-800:]}"
            if IN_CI:
                pytest.fail(message)
            raise RuntimeError(message)
        time.sleep(0.05)
    return server


def stop_dovecot(server: ImapServer) -> None:
    """Stop the server and wait for it (killed if it does not stop within 10 s)."""
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)


def imap_server_fixture() -> Iterator[ImapServer]:
    """A private Dovecot for the whole session, stopped and removed after it."""
    if dovecot_binary() is None:
        unavailable("Dovecot is not installed (apt-get install dovecot-imapd)")
    with tempfile.TemporaryDirectory(prefix="helpkit-dovecot-") as folder:
        server = start_dovecot(Path(folder))
        try:
            yield server
        finally:
            stop_dovecot(server)
