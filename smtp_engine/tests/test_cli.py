"""python -m smtp_engine, run as a separate process."""

import os
import subprocess
import sys
from pathlib import Path

from smtp_engine import HINTS
from smtp_engine.tests.servers import LoopbackSmtpServer

REPOSITORY = Path(__file__).resolve().parents[2]
PASSWORD = "cli-secret-password"


def _run(*args, password=None):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("EMAIL_ACCOUNT_")
    }
    if password is not None:
        env["EMAIL_ACCOUNT_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "smtp_engine", *args],
        cwd=REPOSITORY,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _args(server, certs):
    return [
        "--host",
        server.host,
        "--port",
        str(server.port),
        "--security",
        "starttls",
        "--cafile",
        str(certs.ca_cert),
        "--timeout",
        "5",
        "--from",
        "sender@example.com",
        "--name",
        "Λογιστήριο",
        "--auth",
        "--user",
        "mailbox",
    ]


def test_success_with_password_from_the_environment(certs):
    with LoopbackSmtpServer(
        tls="starttls", certs=certs, auth={"mailbox": PASSWORD}
    ) as server:
        done = _run(*_args(server, certs), "--account", "Main", password=PASSWORD)

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("OK\n")
    assert "Step: Done (done)" in done.stdout
    assert "Reply: 250 Message accepted for delivery" in done.stdout
    assert "Transcript:" in done.stdout
    assert "C: AUTH PLAIN ********" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr
    assert server.messages[0].auth_login == "mailbox"
    assert server.messages[0].message["Subject"] == (
        "Test message from e-mail account Main"
    )


def test_failure_prints_the_hint_and_exits_1(certs):
    with LoopbackSmtpServer(
        tls="starttls", certs=certs, auth={"mailbox": PASSWORD}
    ) as server:
        done = _run(*_args(server, certs), password="not the password")

    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("FAILED\n")
    assert "Step: Logging in (auth)" in done.stdout
    assert "Reply: 535" in done.stdout
    assert f"Hint: {HINTS['login_refused']}" in done.stdout
    assert "not the password" not in done.stdout


def test_no_password_on_the_command_line(certs):
    with LoopbackSmtpServer(tls="starttls", certs=certs) as server:
        done = _run(*_args(server, certs), "--password", PASSWORD)
    helped = _run("--help")

    assert done.returncode == 2
    assert "unrecognized arguments" in done.stderr
    assert server.connections == 0
    assert helped.returncode == 0
    assert "--password" not in helped.stdout


def test_usage_error_exits_2():
    done = _run("--host", "127.0.0.1", "--security", "tls", "--from", "a@b.example")

    assert done.returncode == 2
    assert "--security" in done.stderr
