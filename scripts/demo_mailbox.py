#!/usr/bin/env python3
"""A local mailbox for the demo: a real SMTP server on loopback.

It listens on 127.0.0.1 (port 8025 by default) with STARTTLS, serving a
certificate made for it at each start and signed by a certificate
authority of its own, whose certificate it writes to ``--ca-file`` for
Odoo to trust (the addon's ``email_account_ca_file`` option). It requires
a login over TLS: any user name with the password ``demo``. Every message
it receives is printed in one line and kept in ``--folder`` as an .eml file.

    python3 scripts/demo_mailbox.py --folder .demo/mailbox --ca-file .demo/ca.pem

Needs aiosmtpd and cryptography. It uses the engine's loopback test server
and certificate factory (``smtp_engine/tests/servers.py``), so it runs from
a checkout. Ctrl-C (or SIGTERM) stops it.
"""

import argparse
import shutil
import signal
import sys
import tempfile
import threading
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smtp_engine.tests.servers import LoopbackSmtpServer, make_test_certificates

DEMO_PASSWORD = "demo"
DEFAULT_PORT = 8025
READY = "demo mailbox: listening on"


class _AnyLogin(dict):
    """Every user name logs in with the demo password."""

    def __contains__(self, login):
        return True

    def __getitem__(self, login):
        return DEMO_PASSWORD

    def __bool__(self):
        return True


class Inbox(list):
    """The received messages: each one printed and written to ``folder``."""

    def __init__(self, folder, out=sys.stdout):
        super().__init__()
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.out = out
        self._lock = threading.Lock()

    def append(self, received):
        with self._lock:
            super().append(received)
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            path = self.folder / f"{stamp}-{len(self):04d}.eml"
            path.write_bytes(received.raw)
        subject = received.message.get("Subject", "")
        self.out.write(
            f"demo mailbox: received from {received.mail_from} "
            f"(login {received.auth_login}) to {', '.join(received.rcpt_tos)}: "
            f"{subject!r}, {len(received.raw)} bytes, kept in {path}\n"
        )
        self.out.flush()


def serve(port, folder, ca_file, host="127.0.0.1"):
    """Run the mailbox until SIGINT or SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_args: stop.set())
    certificates = Path(tempfile.mkdtemp(prefix="email_account_demo_tls_"))
    try:
        certs = make_test_certificates(certificates)
        ca_file = Path(ca_file)
        ca_file.parent.mkdir(parents=True, exist_ok=True)
        # Replaced in one step: Odoo may be reading the old one.
        partial = ca_file.with_name(ca_file.name + ".new")
        shutil.copyfile(certs.ca_cert, partial)
        partial.replace(ca_file)
        server = LoopbackSmtpServer(
            host=host,
            port=port,
            tls="starttls",
            require_starttls=True,
            certs=certs,
            server_hostname="demo-mailbox.localhost",
        )
        # The server copies the logins it is given into a plain dict.
        server.auth = _AnyLogin()
        server.messages = Inbox(folder)
        with server:
            print(
                f"{READY} {host} port {server.port} (STARTTLS, any user name "
                f"with the password {DEMO_PASSWORD!r}); messages go to {folder}",
                flush=True,
            )
            while not stop.wait(0.2):
                pass
        print("demo mailbox: stopped", flush=True)
    finally:
        shutil.rmtree(certificates, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--folder", default=str(ROOT / ".demo" / "mailbox"))
    parser.add_argument("--ca-file", default=str(ROOT / ".demo" / "mailbox-ca.pem"))
    args = parser.parse_args(argv)
    try:
        serve(args.port, args.folder, args.ca_file)
    except OSError as exc:
        sys.exit(f"demo mailbox: cannot listen on 127.0.0.1 port {args.port}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
