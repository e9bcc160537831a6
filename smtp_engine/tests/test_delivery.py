"""Messages that must arrive, over every kind of connection."""

import pytest

from smtp_engine import Step, send_test_message
from smtp_engine.tests.servers import LoopbackSmtpServer, ipv6_available
from smtp_engine.texts import TEST_LINES, TEST_SUBJECT

PASSWORD = "correct horse battery staple"


def _parts(message):
    plain = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return plain, html


def test_plain_delivery(settings_for):
    with LoopbackSmtpServer() as server:
        result = send_test_message(
            settings_for(server, sender_name="Accounts Dept"), "Main account"
        )

    assert result.ok, result.transcript
    assert result.step == Step.DONE
    assert result.hint is None
    assert result.code == 250
    assert result.reply == "Message accepted for delivery"
    assert result.queue_id is None
    assert result.recipient == "sender@example.com"
    assert len(server.messages) == 1
    assert server.errors == []
    received = server.messages[0]
    assert received.mail_from == "sender@example.com"
    assert received.rcpt_tos == ["sender@example.com"]
    assert received.auth_login is None
    message = received.message
    assert message["From"].addresses[0].display_name == "Accounts Dept"
    assert message["From"].addresses[0].addr_spec == "sender@example.com"
    assert message["To"].addresses[0].addr_spec == "sender@example.com"
    assert message["Subject"] == "Test message from e-mail account Main account"
    assert message["Date"].datetime is not None
    assert message["Message-ID"] == result.message_id
    assert result.message_id.endswith("@example.com>")
    assert message["X-Email-Account-Test"] == "1"
    assert message.get_content_type() == "multipart/alternative"
    plain, html = _parts(message)
    for text in (plain, html):
        assert "Main account" in text
        assert f"Port: {server.port}" in text
        assert "Security: None" in text
        assert "Login: (no authentication)" in text
    assert f"Server: {server.host}" in plain
    assert "<li>" in html
    assert "C: <message data," in result.transcript
    assert "Main account" not in result.transcript


def test_starttls_with_auth(settings_for, certs):
    with LoopbackSmtpServer(
        tls="starttls", require_starttls=True, certs=certs, auth={"mailbox": PASSWORD}
    ) as server:
        result = send_test_message(
            settings_for(
                server,
                host="localhost",
                auth_required=True,
                username="mailbox",
                password=PASSWORD,
            ),
            "Main",
        )

    assert result.ok, result.transcript
    assert result.step == Step.DONE
    assert server.errors == []
    assert server.messages[0].auth_login == "mailbox"
    assert "* TLS established (TLS" in result.transcript
    assert result.transcript.index("C: STARTTLS") < result.transcript.index("AUTH")
    plain, _html = _parts(server.messages[0].message)
    assert "Security: STARTTLS" in plain
    assert "Login: mailbox" in plain
    assert PASSWORD not in server.messages[0].raw.decode()


def test_implicit_tls_with_auth(settings_for, certs):
    with LoopbackSmtpServer(
        tls="ssl", certs=certs, auth={"mailbox": PASSWORD}
    ) as server:
        result = send_test_message(
            settings_for(
                server, auth_required=True, username="mailbox", password=PASSWORD
            ),
            "Main",
        )

    assert result.ok, result.transcript
    assert server.messages[0].auth_login == "mailbox"
    # Encrypted from the first byte: the TLS event comes before the greeting.
    assert result.transcript.index("* TLS established") < result.transcript.index(
        "S: 220"
    )
    assert "STARTTLS" not in result.transcript


def test_separate_login_is_used_instead_of_username(settings_for, certs):
    with LoopbackSmtpServer(
        tls="starttls", certs=certs, auth={"relay-login": "relay-secret"}
    ) as server:
        result = send_test_message(
            settings_for(
                server,
                auth_required=True,
                username="mailbox",
                password="mailbox-secret",
                login="relay-login",
                login_password="relay-secret",
            ),
            "Main",
        )

    assert result.ok, result.transcript
    assert server.messages[0].auth_login == "relay-login"
    plain, _html = _parts(server.messages[0].message)
    assert "Login: relay-login" in plain


def test_greek_sender_name_and_translated_subject(settings_for):
    greek = {
        TEST_SUBJECT: "Δοκιμαστικό μήνυμα από τον λογαριασμό %(account)s",
        TEST_LINES[0]: "Διακομιστής: %(host)s",
    }
    with LoopbackSmtpServer() as server:
        result = send_test_message(
            settings_for(server, sender_name="Λογιστήριο Αθηνών"),
            "Κεντρικός",
            translate=lambda text: greek.get(text, text),
        )

    assert result.ok, result.transcript
    received = server.messages[0]
    # The headers travel as RFC 2047 encoded words, in plain ASCII.
    headers = received.raw.split(b"\r\n\r\n", 1)[0]
    assert headers.isascii()
    assert b"=?utf-8?" in headers.lower()
    message = received.message
    assert message["From"].addresses[0].display_name == "Λογιστήριο Αθηνών"
    assert message["Subject"] == "Δοκιμαστικό μήνυμα από τον λογαριασμό Κεντρικός"
    plain, html = _parts(message)
    assert f"Διακομιστής: {server.host}" in plain
    assert f"Διακομιστής: {server.host}" in html


def test_translation_with_broken_placeholder_falls_back_to_english(settings_for):
    with LoopbackSmtpServer() as server:
        result = send_test_message(
            settings_for(server),
            "Main",
            translate=lambda text: "Μήνυμα %(wrong)s" if text == TEST_SUBJECT else text,
        )

    assert result.ok, result.transcript
    assert server.messages[0].message["Subject"] == (
        "Test message from e-mail account Main"
    )


@pytest.mark.skipif(not ipv6_available(), reason="::1 is not available here")
def test_ipv6_loopback_with_starttls(settings_for, certs):
    with LoopbackSmtpServer(host="::1", tls="starttls", certs=certs) as server:
        result = send_test_message(settings_for(server, host="::1"), "Main")

    assert result.ok, result.transcript
    assert server.messages[0].peer[0] == "::1"
    assert f"* Connected to [::1]:{server.port}" in result.transcript


def test_queue_id_is_read_from_the_data_reply(settings_for):
    with LoopbackSmtpServer(data_reply="250 2.0.0 Ok: queued as ABC123") as server:
        result = send_test_message(settings_for(server), "Main")

    assert result.ok, result.transcript
    assert result.code == 250
    assert result.reply == "2.0.0 Ok: queued as ABC123"
    assert result.queue_id == "ABC123"


def test_quit_failure_after_data_keeps_the_success(settings_for):
    with LoopbackSmtpServer(drop_on_quit=True) as server:
        result = send_test_message(settings_for(server), "Main")

    assert result.ok, result.transcript
    assert result.step == Step.DONE
    assert result.code == 250
    assert len(server.messages) == 1
    assert "* QUIT failed after the message was accepted" in result.transcript
