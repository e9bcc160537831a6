"""Dovecot, a real IMAP server, on loopback, and an SMTP server feeding it.

``DovecotServer`` starts ``/usr/sbin/dovecot -F`` with a configuration of its
own in a temporary folder: implicit TLS with a certificate made for the test,
a password file, Maildir storage, a ``Junk`` folder marked ``\\Junk``
(RFC 6154), a free loopback port, no system service and no system path.
Started by root, the mail and login processes run as ``nobody`` and
``dovenull`` (Dovecot refuses root for them); otherwise everything runs as
the current user.

``DeliveringSmtpServer`` is the loopback SMTP server of ``servers`` that, like
a receiving provider, adds a ``Received`` and an ``Authentication-Results``
header to each accepted message and files it in the inbox or in Junk of a
Dovecot mailbox, or drops it.

``dovecot_missing()`` says why the tests cannot run here, or returns "".
"""

import contextlib
import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from email.utils import formatdate
from pathlib import Path

from .servers import LoopbackSmtpServer, _check_loopback, _Handler, free_port

DOVECOT = "/usr/sbin/dovecot"
INSTALL_HINT = (
    "Dovecot is not installed: apt-get install -y dovecot-imapd "
    "(the IMAP round-trip tests need /usr/sbin/dovecot)"
)
_START_WAIT = 10.0
# Folder names of the Maildir++ layout, as Dovecot stores them on disk.
_MAILDIR_FOLDERS = {"INBOX": "", "Junk": ".Junk"}


def dovecot_missing():
    """Return why Dovecot cannot be used here, or "" if it can."""
    if not os.access(DOVECOT, os.X_OK):
        return INSTALL_HINT
    return ""


def _system_id(user, fallback):
    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam(user)
        return entry.pw_name, entry.pw_uid, entry.pw_gid
    return fallback


class DovecotServer:
    """Dovecot serving IMAP on two free loopback ports.

    ``port`` speaks implicit TLS; ``starttls_port`` starts in clear text,
    offers STARTTLS and refuses a login before it (LOGINDISABLED).

    ``users`` maps login names to passwords; each gets a Maildir mailbox with
    an ``INBOX`` and a ``Junk`` folder. ``deliver`` files a message as a
    mail delivery agent does; ``folder_messages`` lists what a folder holds.
    """

    def __init__(self, certs, users, host="127.0.0.1", cert="server"):
        _check_loopback(host)
        self.certs = certs
        self.cert = cert
        self.users = dict(users)
        self.host = host
        self.port = 0
        self.starttls_port = 0
        self.root = None
        self._process = None
        self._tempdir = None

    # -- set-up -------------------------------------------------------------

    def _identities(self):
        """Return ``(internal, login, mail uid, mail gid)`` for this process."""
        me = pwd.getpwuid(os.geteuid())
        if os.geteuid() != 0:
            return me.pw_name, me.pw_name, me.pw_uid, me.pw_gid
        nobody = _system_id("nobody", (None, 65534, 65534))
        internal = _system_id("dovecot", nobody)[0] or "nobody"
        login = _system_id("dovenull", nobody)[0] or "nobody"
        return internal, login, nobody[1], nobody[2]

    def _configuration(self):
        internal, login, uid, gid = self._identities()
        internal_group = grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name
        cert, key = self.certs.pair(self.cert)
        root = self.root
        return f"""\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = {self.host}
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
first_valid_uid = 1
first_valid_gid = 1
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
auth_mechanisms = plain login
# A refused login is answered at once. Dovecot also slows down the next
# logins from the same address for seconds (its "auth penalty", which no
# setting turns off): a test that refuses logins uses a server of its own.
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
mail_location = maildir:{root}/mail/%u/Maildir
namespace inbox {{
  inbox = yes
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {self.host}
    port = {self.starttls_port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {self.port}
  }}
}}
service anvil {{
  chroot =
}}
"""

    def _prepare(self):
        self._tempdir = tempfile.TemporaryDirectory(prefix="dovecot-test-")
        self.root = Path(self._tempdir.name)
        # The mail processes, not root, read the mailboxes.
        self.root.chmod(0o755)
        _internal, _login, uid, gid = self._identities()
        lines = [
            f"{user}:{{PLAIN}}{password}:::" for user, password in self.users.items()
        ]
        (self.root / "passwd").write_text("\n".join(lines) + "\n")
        for user in self.users:
            for folder in _MAILDIR_FOLDERS.values():
                for sub in ("cur", "new", "tmp"):
                    (self.mailbox(user) / folder / sub).mkdir(
                        parents=True, exist_ok=True
                    )
            for path in [self.root / "mail", *(self.root / "mail").rglob("*")]:
                os.chown(path, uid, gid)
        self.port = self.port or free_port(self.host)
        self.starttls_port = self.starttls_port or free_port(self.host)
        (self.root / "dovecot.conf").write_text(self._configuration())

    def start(self):
        """Start Dovecot and wait until it accepts connections; return self."""
        if missing := dovecot_missing():
            raise RuntimeError(missing)
        self._prepare()
        self._process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        give_up = time.monotonic() + _START_WAIT
        while time.monotonic() < give_up:
            if self._process.poll() is not None:
                error = self._process.stderr.read().decode(errors="replace")
                self.stop()
                raise RuntimeError(f"dovecot did not start: {error}{self.log()}")
            with contextlib.suppress(OSError):
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not listen within {_START_WAIT} s")

    def stop(self):
        """Stop Dovecot and remove its folder."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stderr.close()
        tempdir, self._tempdir = self._tempdir, None
        if tempdir is not None:
            shutil.rmtree(tempdir.name, ignore_errors=True)
            with contextlib.suppress(OSError):
                tempdir.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # -- mailboxes ------------------------------------------------------------

    def mailbox(self, user):
        """Return the Maildir folder of ``user``."""
        return self.root / "mail" / user / "Maildir"

    def deliver(self, user, folder, raw):
        """File the message ``raw`` (bytes) in ``folder`` of ``user``, atomically."""
        directory = self.mailbox(user) / _MAILDIR_FOLDERS[folder]
        name = f"{time.time_ns()}.P{os.getpid()}.email-account-test"
        temporary = directory / "tmp" / name
        temporary.write_bytes(raw)
        _internal, _login, uid, gid = self._identities()
        os.chown(temporary, uid, gid)
        temporary.rename(directory / "new" / name)

    def empty(self, user):
        """Remove every message of ``user``'s mailbox."""
        for folder in _MAILDIR_FOLDERS.values():
            for sub in ("new", "cur"):
                for path in (self.mailbox(user) / folder / sub).iterdir():
                    path.unlink()

    def folder_messages(self, user, folder):
        """Return the raw messages currently in ``folder`` of ``user``."""
        directory = self.mailbox(user) / _MAILDIR_FOLDERS[folder]
        return [
            path.read_bytes()
            for sub in ("new", "cur")
            for path in sorted((directory / sub).iterdir())
        ]

    def log(self):
        """Return Dovecot's log, for failure messages."""
        with contextlib.suppress(OSError, TypeError):
            return (self.root / "dovecot.log").read_text(errors="replace")
        return ""


class _DeliveringHandler(_Handler):
    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        if reply.startswith("250"):
            self._server.deliver_last()
        return reply


class DeliveringSmtpServer(LoopbackSmtpServer):
    """A ``LoopbackSmtpServer`` that files what it accepts in a Dovecot mailbox.

    ``folder`` is "INBOX", "Junk" or None (accepted and dropped, as a
    silently discarding provider does); ``authentication_results`` is the
    value of the ``Authentication-Results`` header put on top of the
    message (None: no header); ``delay`` holds the message back that many
    seconds before filing it. Every recipient is filed in ``user``'s
    mailbox.
    """

    def __init__(
        self,
        dovecot,
        user,
        *,
        folder="INBOX",
        authentication_results=None,
        delay=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.dovecot = dovecot
        self.user = user
        self.folder = folder
        self.authentication_results = authentication_results
        self.delay = delay
        self._timers = []

    def _controller_class(self):
        base = super()._controller_class()
        owner = self

        class DeliveringController(base):
            def __init__(self, _handler, **kwargs):
                super().__init__(_DeliveringHandler(owner), **kwargs)

        return DeliveringController

    def delivered_copy(self, raw):
        """Return ``raw`` with the headers a receiving provider puts on top."""
        received = (
            "Received: from client.example.test ([127.0.0.1])\r\n"
            f"\tby mx.example.test with ESMTPS; {formatdate(localtime=True)}\r\n"
        )
        headers = [received]
        if self.authentication_results is not None:
            headers.insert(
                0, f"Authentication-Results: {self.authentication_results}\r\n"
            )
        return "".join(headers).encode() + raw

    def deliver_last(self):
        """File the last accepted message as configured."""
        if self.folder is None:
            return
        raw = self.delivered_copy(self.messages[-1].raw)
        if self.delay:
            timer = threading.Timer(
                self.delay, self.dovecot.deliver, (self.user, self.folder, raw)
            )
            timer.name = "delayed-delivery"
            timer.daemon = True
            self._timers.append(timer)
            timer.start()
        else:
            self.dovecot.deliver(self.user, self.folder, raw)

    def stop(self):
        """Stop the server once the deliveries held back are filed."""
        for timer in self._timers:
            timer.join()
        self._timers.clear()
        return super().stop()
