"""The mapping from failures to hints, and the settings object."""

import smtplib
import socket

import pytest

from smtp_engine import (
    HINTS,
    STEP_LABELS,
    SmtpOutcome,
    SmtpSettings,
    Step,
    diagnose_exception,
    diagnose_reply,
    parse_queue_id,
)


@pytest.mark.parametrize(
    ("reply", "queue_id"),
    [
        ("2.0.0 Ok: queued as ABC123", "ABC123"),
        ("2.0.0 Ok: queued as 4Xyz9.", "4Xyz9"),
        ("OK id=1tAbCd-0003Xy-2Q", "1tAbCd-0003Xy-2Q"),
        (
            "2.6.0 <20250325@mail.example.com> Queued mail for delivery",
            "20250325@mail.example.com",
        ),
        ("Message accepted for delivery", None),
        (b"2.0.0 Ok: queued as B1", "B1"),
    ],
)
def test_queue_id(reply, queue_id):
    assert parse_queue_id(reply) == queue_id


REPLIES = [
    # step, code, reply text, expected hint
    (Step.GREETING, 554, "5.7.1 No SMTP service here", "greeting_refused"),
    (Step.GREETING, -1, "\x15\x03\x03", "plain_on_ssl_port"),
    (Step.TLS, 454, "4.7.0 TLS not available", "tls_failed"),
    (Step.AUTH, 535, "5.7.8 Authentication credentials invalid", "login_refused"),
    (
        Step.AUTH,
        534,
        "5.7.9 Application-specific password required.",
        "google_app_password_required",
    ),
    (Step.AUTH, 538, "5.7.11 Encryption required", "starttls_required"),
    (Step.SENDER, 530, "5.7.0 Must issue a STARTTLS command", "starttls_required"),
    (
        Step.SENDER,
        530,
        "5.7.57 Client not authenticated",
        "microsoft_client_not_authenticated",
    ),
    (Step.SENDER, 553, "5.7.1 Sender address not owned by user", "sender_not_allowed"),
    (Step.SENDER, 451, "4.3.0 Try again later", "server_error"),
    (Step.RECIPIENT, 550, "5.7.54 Unable to relay recipient", "relay_denied"),
    (Step.RECIPIENT, 550, "5.1.1 User unknown", "recipient_rejected"),
    (
        Step.DATA,
        550,
        "5.7.60 SMTP; Client does not have permissions to send as this sender",
        "microsoft_send_as_denied",
    ),
    (Step.DATA, 552, "5.3.4 Message size exceeds fixed limit", "message_rejected"),
    (Step.EHLO, 421, "4.3.2 Service shutting down", "server_error"),
]


@pytest.mark.parametrize(("step", "code", "text", "hint"), REPLIES)
def test_reply_hints(step, code, text, hint):
    assert diagnose_reply(step, code, text) == hint
    exc = smtplib.SMTPResponseException(code, text)
    assert diagnose_exception(exc, step)[:2] == (hint, code)


def test_timeouts_and_network_errors():
    implicit = SmtpSettings(host="h", port=465, encryption="starttls")
    plain = SmtpSettings(host="h", port=25)
    timeout = TimeoutError("timed out")

    assert diagnose_exception(timeout, Step.GREETING, implicit)[0] == (
        "plain_on_ssl_port"
    )
    assert diagnose_exception(timeout, Step.GREETING, plain)[0] == "timeout"
    lost = smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
    assert diagnose_exception(lost, Step.DATA, plain)[0] == "disconnected"
    assert diagnose_exception(lost, Step.DATA, plain, timed_out=True)[0] == "timeout"
    cases = [
        (socket.gaierror(-2, "Name or service not known"), "resolve", "dns_failed"),
        (ConnectionRefusedError(111, "refused"), Step.CONNECT, "connection_refused"),
        (smtplib.SMTPNotSupportedError("no"), Step.TLS, "starttls_not_offered"),
        (smtplib.SMTPNotSupportedError("no"), Step.AUTH, "auth_not_offered"),
        (
            smtplib.SMTPException("No suitable auth method"),
            Step.AUTH,
            "auth_not_offered",
        ),
    ]
    for exc, step, hint in cases:
        assert diagnose_exception(exc, step)[0] == hint


def test_every_step_has_a_label_and_every_text_is_plain():
    assert set(STEP_LABELS) == {step.value for step in Step}
    for text in [*STEP_LABELS.values(), *HINTS.values()]:
        assert text.strip() == text
        assert "%(" not in text


def test_result_texts_are_translated_by_the_caller():
    result = SmtpOutcome(ok=False, step=Step.AUTH, hint="login_refused")

    assert result.hint_text(lambda text: f"[{text}]") == f"[{HINTS['login_refused']}]"
    assert result.step_label(str.upper) == "LOGGING IN"
    assert SmtpOutcome(ok=True, step=Step.DONE).hint_text() == ""


def test_settings():
    settings = SmtpSettings(
        host="h",
        auth_required=True,
        username="box",
        password="box-secret",
        login="relay",
        login_password="relay-secret",
    )

    assert settings.credentials() == ("relay", "relay-secret")
    own = SmtpSettings(host="h", auth_required=True, username="u", password="p")
    assert own.credentials() == ("u", "p")
    assert SmtpSettings(host="h", username="u", password="p").credentials() is None
    assert "secret" not in repr(settings)
    with pytest.raises(ValueError):
        SmtpSettings(host="h", encryption="tls")
    with pytest.raises(ValueError):
        SmtpSettings(host="h", timeout=0)
    with pytest.raises(ValueError):
        SmtpSettings(host="h", port=70000)
