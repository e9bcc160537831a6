"""The test message as composed and as it travels (serialized for SMTP)."""

import email.policy
from datetime import datetime, timedelta, timezone
from email.parser import BytesParser

import pytest

from smtp_engine import SmtpSettings, compose_test_message
from smtp_engine.texts import TEST_SUBJECT

NOW = datetime(2025, 3, 25, 9, 30, tzinfo=timezone(timedelta(hours=2)))


def _settings(**values):
    values.setdefault("host", "smtp.example.com")
    values.setdefault("port", 587)
    values.setdefault("encryption", "starttls")
    values.setdefault("sender_name", "Accounts")
    values.setdefault("sender_email", "accounts@example.com")
    return SmtpSettings(**values)


def _travel(message):
    raw = message.as_bytes(policy=email.policy.SMTP)
    return raw, BytesParser(policy=email.policy.default).parsebytes(raw)


def _bodies(message):
    return [
        message.get_body(preferencelist=(kind,)).get_content()
        for kind in ("plain", "html")
    ]


def test_headers_and_details():
    message = compose_test_message(
        _settings(
            auth_required=True,
            username="box",
            password="mailbox-pass",
            login="relay",
            login_password="relay-pass",
        ),
        "Main",
        now=NOW,
        message_id_domain="id.example.org",
    )
    raw, received = _travel(message)

    assert str(received["From"]) == "Accounts <accounts@example.com>"
    assert str(received["To"]) == "Accounts <accounts@example.com>"
    assert received["Date"].datetime == NOW
    assert received["Message-ID"].endswith("@id.example.org>")
    assert received["X-Email-Account-Test"] == "1"
    plain, html = _bodies(received)
    for body in (plain, html):
        assert "smtp.example.com" in body
        assert "Port: 587" in body
        assert "Security: STARTTLS" in body
        assert "Login: relay" in body
        assert "Sent at: 2025-03-25 09:30:00 +0200" in body
    for secret in (b"mailbox-pass", b"relay-pass"):
        assert secret not in raw


def test_html_escapes_the_values():
    message = compose_test_message(
        _settings(host="<b>smtp</b>&co"), "<script>alert(1)</script>", now=NOW
    )
    _plain, html = _bodies(message)

    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;smtp&lt;/b&gt;&amp;co" in html


def test_long_greek_subject_keeps_its_spaces():
    greek = (
        "Δοκιμαστικό μήνυμα από τον λογαριασμό ηλεκτρονικού ταχυδρομείου %(account)s"
    )
    message = compose_test_message(
        _settings(sender_name="Λογιστήριο Αθηνών"),
        "Κεντρικό Λογιστήριο Θεσσαλονίκης",
        translate=lambda text: greek if text == TEST_SUBJECT else text,
        now=NOW,
    )
    raw, received = _travel(message)

    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    assert received["Subject"] == greek % {
        "account": "Κεντρικό Λογιστήριο Θεσσαλονίκης"
    }
    assert received["From"].addresses[0].display_name == "Λογιστήριο Αθηνών"


def test_line_breaks_in_names_cannot_inject_headers():
    message = compose_test_message(
        _settings(sender_name="Accounts\r\nBcc: victim@example.org"),
        "Main\nBcc: victim@example.org",
        now=NOW,
    )
    _raw, received = _travel(message)

    assert received["Bcc"] is None
    assert "Bcc" in received["Subject"]


@pytest.mark.parametrize("address", ["", "accounts", "a b@example.com", "x@y@z"])
def test_invalid_sender_address_is_refused(address):
    with pytest.raises(ValueError):
        compose_test_message(_settings(sender_email=address), "Main")


def test_a_quoted_local_part_is_a_valid_sender():
    message = compose_test_message(
        _settings(sender_email='"john..doe"@example.com'), "Accounts", now=NOW
    )
    assert message["To"].addresses[0].domain == "example.com"
