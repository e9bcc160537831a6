"""No password, in any encoding, may leak into a transcript, error or repr."""

import base64

import pytest

from smtp_engine import send_test_message
from smtp_engine.tests.servers import LoopbackSmtpServer
from smtp_engine.transcript import WITHHELD

USER = "mailbox@example.com"
PASSWORD = "Κωδικός-s3cret!"


def _b64(text):
    return base64.b64encode(text.encode()).decode()


FORBIDDEN = (PASSWORD, _b64(PASSWORD), _b64(f"\0{USER}\0{PASSWORD}"))


def _assert_masked(settings, result):
    for leak in FORBIDDEN:
        assert leak not in result.transcript
        assert leak not in result.error
        assert leak not in result.reply
        assert leak not in repr(settings)
        assert leak not in repr(result)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_successful_login_is_masked(settings_for, certs, mechanism):
    with LoopbackSmtpServer(
        tls="ssl", certs=certs, auth={USER: PASSWORD}, auth_mechanisms=(mechanism,)
    ) as server:
        settings = settings_for(
            server, auth_required=True, username=USER, password=PASSWORD
        )
        result = send_test_message(settings, "Main")

    assert result.ok, result.transcript
    # The non-ASCII password went through, encoded as UTF-8.
    assert server.messages[0].auth_login == USER
    # CRAM-MD5 has no initial response: its one answer follows a challenge.
    first = f"C: AUTH {mechanism}" + ("" if mechanism == "CRAM-MD5" else " ********")
    assert first in result.transcript.splitlines()
    if mechanism != "PLAIN":
        # The answer travels in its own line, answering a 334 challenge.
        assert "\nS: 334 " in result.transcript
        assert result.transcript.count("C: ********") == 1
    _assert_masked(settings, result)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_refused_login_is_masked(settings_for, certs, mechanism):
    with LoopbackSmtpServer(
        tls="ssl",
        certs=certs,
        auth={USER: "another password"},
        auth_mechanisms=(mechanism,),
    ) as server:
        settings = settings_for(
            server, auth_required=True, username=USER, password=PASSWORD
        )
        result = send_test_message(settings, "Main")

    assert result.hint == "login_refused"
    assert "S: 535" in result.transcript
    _assert_masked(settings, result)


def test_separate_login_password_is_masked(settings_for, certs):
    with LoopbackSmtpServer(tls="ssl", certs=certs, auth={USER: PASSWORD}) as server:
        settings = settings_for(
            server,
            auth_required=True,
            username="other",
            password="mailbox password",
            login=USER,
            login_password=PASSWORD,
        )
        result = send_test_message(settings, "Main")

    assert result.ok, result.transcript
    _assert_masked(settings, result)
    assert "mailbox password" not in repr(settings)


def test_reply_echoing_the_password_is_withheld_whole(settings_for):
    with LoopbackSmtpServer(reject_sender=(550, f"5.7.1 no, {PASSWORD}")) as server:
        settings = settings_for(server, password=PASSWORD)
        result = send_test_message(settings, "Main")

    assert result.hint == "sender_not_allowed"
    assert result.code == 550
    assert result.reply == WITHHELD
    assert result.error == f"SMTPSenderRefused: {WITHHELD}"
    assert f"S: 550 {WITHHELD}" in result.transcript.splitlines()
    # Nothing around the password is left to show which word it was.
    for text in (result.reply, result.error, result.transcript):
        assert "5.7.1 no" not in text
    _assert_masked(settings, result)


def test_client_line_holding_the_password_is_withheld_whole(settings_for):
    with LoopbackSmtpServer() as server:
        settings = settings_for(
            server, password="s3cret", sender_email="s3cret@example.com"
        )
        result = send_test_message(settings, "Main")

    assert result.ok, result.transcript
    lines = result.transcript.splitlines()
    assert lines.count(f"C: {WITHHELD}") == 2  # MAIL FROM and RCPT TO
    assert "s3cret" not in result.transcript


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_non_ascii_login_and_password(settings_for, certs, mechanism):
    login, password = "λογαριασμός@example.com", "Ünïcödé-κλειδί-密码"
    with LoopbackSmtpServer(
        tls="ssl", certs=certs, auth={login: password}, auth_mechanisms=(mechanism,)
    ) as server:
        result = send_test_message(
            settings_for(server, auth_required=True, username=login, password=password),
            "Main",
        )

    assert result.ok, result.transcript
    # The server checked the UTF-8 bytes of both (CRAM-MD5: its HMAC key).
    assert server.messages[0].auth_login == login
    assert f"C: AUTH {mechanism}" in result.transcript
    assert not {c for c in password if not c.isascii()} & set(result.transcript)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_password_that_cannot_be_encoded_shows_no_character(
    settings_for, certs, mechanism
):
    password = "pass\ud800word-ß"
    with LoopbackSmtpServer(
        tls="ssl", certs=certs, auth={USER: "x"}, auth_mechanisms=(mechanism,)
    ) as server:
        settings = settings_for(
            server, auth_required=True, username=USER, password=password
        )
        result = send_test_message(settings, "Main")

    assert result.step == "auth"
    assert result.hint == "credentials_not_encodable"
    for text in (result.transcript, result.error, result.reply, repr(result)):
        assert "\ud800" not in text
        assert "ß" not in text
        assert "position" not in text
    assert "MAIL" not in server.commands
