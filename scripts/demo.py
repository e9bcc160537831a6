#!/usr/bin/env python3
"""Run the demo: the local mailbox and Odoo with the addon and its demo data.

    python3 scripts/demo.py        (scripts/setup runs it after setting up)

Creates the database (or reuses it) with the addon and its demo accounts,
starts the demo mailbox (scripts/demo_mailbox.py) and Odoo on 127.0.0.1,
prints the URL and the login, and waits. Ctrl-C (or SIGTERM) stops both,
and nothing it started is left running. Run it with a Python that imports
Odoo 19 (scripts/setup makes one in .venv).

Environment:
  EMAIL_ACCOUNT_DEMO_DIR        state folder: Odoo's configuration, data
                                directory (with the encryption key) and log,
                                and the mailbox's messages (default .demo)
  EMAIL_ACCOUNT_DEMO_DB         database (default email_account_demo)
  ODOO_HTTP_PORT                Odoo's port on 127.0.0.1 (default 8069)
  EMAIL_ACCOUNT_DEMO_SMTP_PORT  the mailbox's port on 127.0.0.1 (default 8025)
  ODOO_ADDONS_PATH              Odoo's own addons folders (default: found
                                next to the odoo package)
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import xmlrpc.client
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from demo_mailbox import DEFAULT_PORT, DEMO_PASSWORD
from demo_mailbox import READY as MAILBOX_READY
from local_odoo import (
    addons_path,
    odoo_command,
    stop_process_group,
    wait_until_serving,
    write_config,
)

READY = "demo ready:"
LOGIN = PASSWORD = "admin"
# The demo accounts (data/email_account_demo.xml) and their passwords.
DEMO_ACCOUNTS = {
    "email_account.email_account_demo_sales": DEMO_PASSWORD,
    "email_account.email_account_demo_support": "not-the-password",
}
STOP_SECONDS = 20


def say(text):
    print(f"==> {text}", flush=True)


def fail(text):
    print(f"!! {text}", file=sys.stderr, flush=True)
    sys.exit(1)


def _die_with_parent(command):
    """``command`` made to get SIGTERM if the demo dies without stopping it.

    util-linux's setpriv sets the parent-death signal and runs the command;
    without it, a demo killed with SIGKILL could leave its children behind.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *command] if setpriv else command


def _port_free(port):
    with socket.socket() as sock:
        # As the servers bind: closed connections waiting out TIME_WAIT on
        # the port do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Demo:
    """The mailbox and Odoo, as child processes in their own process groups."""

    def __init__(self):
        self.folder = Path(os.environ.get("EMAIL_ACCOUNT_DEMO_DIR") or ROOT / ".demo")
        self.folder = self.folder.resolve()
        self.db = os.environ.get("EMAIL_ACCOUNT_DEMO_DB") or "email_account_demo"
        self.http_port = int(os.environ.get("ODOO_HTTP_PORT") or 8069)
        self.smtp_port = int(
            os.environ.get("EMAIL_ACCOUNT_DEMO_SMTP_PORT") or DEFAULT_PORT
        )
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.config = self.folder / "odoo.conf"
        self.log = self.folder / "odoo.log"
        self.mailbox_folder = self.folder / "mailbox"
        self.ca_file = self.folder / "mailbox-ca.pem"
        self.children = []
        self.stopping = threading.Event()

    # -- set-up --------------------------------------------------------------

    def write_config(self):
        for port, variable in (
            (self.http_port, "ODOO_HTTP_PORT"),
            (self.smtp_port, "EMAIL_ACCOUNT_DEMO_SMTP_PORT"),
        ):
            if not _port_free(port):
                fail(
                    f"port {port} on 127.0.0.1 is in use (is the demo already "
                    f"running?). Stop what uses it, or choose another port: "
                    f"{variable}=<port> {sys.argv[0]}"
                )
        write_config(
            self.config,
            addons=addons_path(self.folder),
            data_dir=self.folder / "data",
            db=self.db,
            port=self.http_port,
            max_cron_threads=1,
            logfile=self.log,
            # The demo mailbox's certificate authority (see README).
            email_account_ca_file=self.ca_file,
        )

    def database_state(self):
        """None (no database), "installed", or another state of the addon."""
        import psycopg2

        try:
            connection = psycopg2.connect(dbname=self.db)
        except psycopg2.OperationalError as exc:
            if "does not exist" in str(exc):
                return None
            fail(
                f"cannot connect to PostgreSQL: {str(exc).strip()}. Run "
                f"scripts/setup, which starts it and creates your role."
            )
        try:
            with connection.cursor() as cr:
                cr.execute(
                    "SELECT state FROM ir_module_module WHERE name = 'email_account'"
                )
                row = cr.fetchone()
        except psycopg2.Error:
            return "not an Odoo database"
        finally:
            connection.close()
        return row[0] if row else "not installed"

    def prepare_database(self):
        state = self.database_state()
        if state == "installed":
            say(f"using the database {self.db} (created by an earlier run)")
            return
        if state is not None:
            fail(
                f"the database {self.db} exists but email_account is {state} "
                f"in it, and the demo changes no database it did not create. "
                f"Choose another name: EMAIL_ACCOUNT_DEMO_DB=<name> {sys.argv[0]}"
            )
        say(
            f"creating the database {self.db} with the addon and its demo data "
            f"(about a minute; log: {self.log})"
        )
        started = time.monotonic()
        install = odoo_command(
            self.config, "-i", "email_account", "--with-demo", "--stop-after-init"
        )
        process = subprocess.Popen(
            _die_with_parent(install),
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.children.append(process)
        while process.poll() is None and not self.stopping.wait(10):
            say(f"  still installing ({time.monotonic() - started:.0f} s)")
        self.children.remove(process)
        if self.stopping.is_set():
            stop_process_group(process, STOP_SECONDS)
            return
        if process.returncode != 0 or self.database_state() != "installed":
            fail(f"installing the addon failed: see {self.log}\n{self._log_tail()}")
        say(f"  installed in {time.monotonic() - started:.0f} s")

    def _log_tail(self, lines=15):
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    # -- processes -----------------------------------------------------------

    def _start(self, name, command, ready=None):
        process = subprocess.Popen(
            _die_with_parent(command),
            cwd=self.folder,
            stdout=subprocess.PIPE if ready else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if ready else None,
            text=True,
            start_new_session=True,
        )
        process.name = name
        self.children.append(process)
        if ready:
            is_ready = threading.Event()

            def forward():
                # The mailbox prints each message it receives: pass it on.
                for line in process.stdout:
                    print(line, end="", flush=True)
                    if line.startswith(ready):
                        is_ready.set()

            threading.Thread(target=forward, daemon=True).start()
            deadline = time.monotonic() + 30
            while not is_ready.wait(0.1):
                if process.poll() is not None or time.monotonic() > deadline:
                    fail(f"the {name} did not start")
        return process

    def start_mailbox(self):
        say(f"starting the demo mailbox on 127.0.0.1 port {self.smtp_port}")
        self._start(
            "demo mailbox",
            [
                sys.executable,
                "-u",
                str(ROOT / "scripts" / "demo_mailbox.py"),
                "--port",
                str(self.smtp_port),
                "--folder",
                str(self.mailbox_folder),
                "--ca-file",
                str(self.ca_file),
            ],
            ready=MAILBOX_READY,
        )

    def start_odoo(self):
        say(f"starting Odoo on {self.url} (log: {self.log})")
        odoo = self._start("Odoo", odoo_command(self.config))
        if problem := wait_until_serving(odoo, self.url, self.stopping):
            fail(f"{problem}: see {self.log}\n{self._log_tail()}")

    def point_accounts_at_mailbox(self):
        """Give the demo accounts the mailbox's port, if it is not the default.

        A new port drops an account's stored password (see
        email.account._secret_binding_fields): the same write enters it again.
        """
        common = xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/common")
        uid = common.authenticate(self.db, LOGIN, PASSWORD, {})
        if not uid:
            say(
                f"cannot log in as {LOGIN} / {PASSWORD} to check the demo accounts' "
                f"port: set it to {self.smtp_port} on the accounts by hand"
            )
            return
        models = xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/object")
        for xmlid, password in DEMO_ACCOUNTS.items():
            module, name = xmlid.split(".")
            found = models.execute_kw(
                self.db,
                uid,
                PASSWORD,
                "ir.model.data",
                "search_read",
                [[("module", "=", module), ("name", "=", name)]],
                {"fields": ["res_id"]},
            )
            if not found:
                continue
            account_id = found[0]["res_id"]
            port = models.execute_kw(
                self.db,
                uid,
                PASSWORD,
                "email.account",
                "read",
                [[account_id], ["smtp_port"]],
            )
            if port and port[0]["smtp_port"] != self.smtp_port:
                models.execute_kw(
                    self.db,
                    uid,
                    PASSWORD,
                    "email.account",
                    "write",
                    [[account_id], {"smtp_port": self.smtp_port, "password": password}],
                )

    def stop(self):
        for process in reversed(self.children):
            stop_process_group(process, STOP_SECONDS)
        self.children.clear()

    def run(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        self.write_config()
        self.start_mailbox()
        self.prepare_database()
        if self.stopping.is_set():
            return 0
        self.start_odoo()
        if self.stopping.is_set():
            return 0
        self.point_accounts_at_mailbox()
        print(
            f"\nThe demo is running. Open {self.url} and log in as "
            f"{LOGIN} / {PASSWORD}.\n"
            "  Email Accounts > 'Sales (demo mailbox)' > Check Account Settings ...\n"
            "    delivers a test message to the demo mailbox, which prints it here\n"
            f"    and keeps it in {self.mailbox_folder}.\n"
            "  'Support (demo mailbox, wrong password)' shows how a failed check\n"
            "    explains itself.\n"
            f"  Odoo's log: {self.log}\n"
            "Press Ctrl-C to stop the demo.\n"
            f"{READY} {self.url} database {self.db}",
            flush=True,
        )
        while not self.stopping.wait(0.5):
            for process in self.children:
                if process.poll() is not None:
                    print(
                        f"!! the {process.name} stopped (exit {process.returncode})",
                        flush=True,
                    )
                    return 1
        return 0


def main():
    demo = Demo()

    def on_signal(*_args):
        demo.stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        code = demo.run()
    finally:
        if demo.children:
            say("stopping the demo")
        demo.stop()
    say("demo stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
