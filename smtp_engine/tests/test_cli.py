"""python -m smtp_engine, run as a separate process."""

import os
import subprocess
import sys
from pathlib import Path

from smtp_engine import HINTS
from smtp_engine.certificate import format_fingerprint
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


def test_refused_certificate_is_printed_and_can_be_pinned(certs):
    with LoopbackSmtpServer(
        tls="starttls", certs=certs, cert="self_signed", auth={"mailbox": PASSWORD}
    ) as server:
        refused = _run(*_args(server, certs), "--host", "localhost", password=PASSWORD)
        pinned = _run(
            *_args(server, certs),
            "--pin",
            certs.sha256("self_signed"),
            password=PASSWORD,
        )

    fingerprint = format_fingerprint(certs.sha256("self_signed"))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"Hint: {HINTS['certificate_untrusted']}" in refused.stdout
    assert f"  SHA-256: {fingerprint}" in refused.stdout
    assert "  Names: DNS:localhost, IP:127.0.0.1, IP:::1" in refused.stdout
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    assert server.commands.count("AUTH") == 1


def test_no_switch_turns_verification_off():
    helped = _run("--help")

    assert "--no-verify" not in helped.stdout
    assert "--pin SHA256" in helped.stdout
