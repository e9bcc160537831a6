"""The demo end to end: start, check the demo accounts, Ctrl-C, nothing left.

Runs scripts/demo.py as scripts/setup does, with a Python that imports Odoo
19, a state folder, a database and ports of its own, against the real demo
mailbox and a real Odoo on loopback. The tests run in this order; the last
one stops the demo.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import xmlrpc.client
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
READY = "demo ready:"
START_SECONDS = 600


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _odoo_importable():
    probe = [sys.executable, "-c", "import odoo.release"]
    return (
        subprocess.run(probe, check=False, cwd="/", capture_output=True).returncode == 0
    )


def _processes_mentioning(text):
    """The ids of the running processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if text.encode() in command:
            found.append(int(entry.name))
    return found


pytestmark = pytest.mark.skipif(not _odoo_importable(), reason="Odoo is not importable")


class RunningDemo:
    def __init__(self, folder):
        self.folder = folder
        self.db = f"email_account_demo_test_{os.getpid()}_{int(time.time())}"
        self.http_port = _free_port()
        self.smtp_port = _free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.lines = []
        env = dict(
            os.environ,
            EMAIL_ACCOUNT_DEMO_DIR=str(folder),
            EMAIL_ACCOUNT_DEMO_DB=self.db,
            ODOO_HTTP_PORT=str(self.http_port),
            EMAIL_ACCOUNT_DEMO_SMTP_PORT=str(self.smtp_port),
        )
        started = time.monotonic()
        # Its own session, as a program started from a terminal.
        self.process = subprocess.Popen(
            [sys.executable, "-u", str(ROOT / "scripts" / "demo.py")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(START_SECONDS):
            self.kill()
            pytest.fail("the demo did not start:\n" + "".join(self.lines))
        self.start_seconds = time.monotonic() - started

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith(READY):
                self.ready.set()
        self.ready.set()

    def execute(self, model, method, *args, **kwargs):
        common = xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/common")
        uid = common.authenticate(self.db, "admin", "admin", {})
        models = xmlrpc.client.ServerProxy(
            f"{self.url}/xmlrpc/2/object", allow_none=True
        )
        return models.execute_kw(
            self.db, uid, "admin", model, method, list(args), kwargs
        )

    def account(self, xmlid):
        found = self.execute(
            "ir.model.data",
            "search_read",
            [("module", "=", "email_account"), ("name", "=", xmlid)],
            fields=["res_id"],
        )
        return found[0]["res_id"]

    def kill(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    running = RunningDemo(tmp_path_factory.mktemp("demo"))
    yield running
    running.kill()
    subprocess.run(["dropdb", "--if-exists", running.db], check=False)


def test_demo_prints_the_url_and_login(demo):
    output = "".join(demo.lines)
    assert f"Open {demo.url} and log in as admin / admin." in output
    print(f"demo started in {demo.start_seconds:.0f} s")


def test_check_of_the_sales_account_is_delivered_to_the_mailbox(demo):
    sales = demo.account("email_account_demo_sales")
    demo.execute("email.account", "action_send_test_message", [sales])
    (result,) = demo.execute("email.account", "read", [sales], ["test_state"])
    assert result["test_state"] == "ok"
    (kept,) = (demo.folder / "mailbox").glob("*.eml")
    message = BytesParser(policy=policy.default).parsebytes(kept.read_bytes())
    assert message["To"].addresses[0].addr_spec == "sales@demo.example.com"
    assert "demo mailbox: received from sales@demo.example.com" in "".join(demo.lines)


def test_check_of_the_wrong_password_account_fails_with_its_hint(demo):
    support = demo.account("email_account_demo_support")
    demo.execute("email.account", "action_send_test_message", [support])
    (result,) = demo.execute(
        "email.account", "read", [support], ["test_state", "test_message"]
    )
    assert result["test_state"] == "failed"
    assert "The server refused the user name or password." in result["test_message"]


def test_demo_passwords_are_encrypted_with_the_key_file_of_its_data_dir(demo):
    key_file = demo.folder / "data" / "email_account.key"
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_ctrl_c_stops_everything_the_demo_started(demo):
    # A terminal's Ctrl-C: SIGINT to the foreground process group.
    os.killpg(demo.process.pid, signal.SIGINT)
    assert demo.process.wait(60) == 0
    assert not _processes_mentioning(str(demo.folder))
    for port in (demo.http_port, demo.smtp_port):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0
