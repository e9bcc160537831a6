"""Failures: each must stop at the right step with the right hint."""

import pytest

from smtp_engine import (
    HINTS,
    SmtpEngineError,
    SmtpSettings,
    Step,
    open_connection,
    send_test_message,
)
from smtp_engine.tests.servers import (
    LoopbackSmtpServer,
    SilentServer,
    TricklingServer,
    refused_port,
)

MICROSOFT_SEND_AS = (
    550,
    "5.7.60 SMTP; Client does not have permissions to send as this sender",
)
RELAY_DENIED = (554, "5.7.1 <sender@example.com>: Relay access denied")
USER_UNKNOWN = (550, "5.1.1 <sender@example.com>: User unknown")
SPAM = (554, "5.6.0 Message refused as spam")


def _check(settings):
    result = send_test_message(settings, "Main")
    assert not result.ok, result.transcript
    assert result.hint in HINTS
    assert result.hint_text()
    return result


def test_wrong_password(settings_for, certs):
    with LoopbackSmtpServer(
        tls="starttls", certs=certs, auth={"mailbox": "right"}
    ) as server:
        result = _check(
            settings_for(
                server, auth_required=True, username="mailbox", password="wrong"
            )
        )

    assert result.step == Step.AUTH
    assert result.hint == "login_refused"
    assert result.code == 535
    assert "Authentication credentials invalid" in result.reply
    assert server.messages == []
    assert "MAIL" not in server.commands


def test_ssl_against_a_plain_port(settings_for, certs):
    with LoopbackSmtpServer(tls="starttls", certs=certs) as server:
        result = _check(settings_for(server, encryption="ssl"))

    assert result.step == Step.TLS
    assert result.hint == "ssl_on_plain_port"
    assert result.code is None
    assert "SSL" in result.error


def test_starttls_not_offered_never_falls_back_to_clear_text(settings_for):
    with LoopbackSmtpServer() as server:
        result = _check(settings_for(server, encryption="starttls"))

    assert result.step == Step.TLS
    assert result.hint == "starttls_not_offered"
    assert server.commands == ["EHLO"]
    assert "mail FROM" not in result.transcript
    assert server.messages == []


def test_starttls_required_by_the_server(settings_for, certs):
    with LoopbackSmtpServer(
        tls="starttls", require_starttls=True, certs=certs
    ) as server:
        result = _check(settings_for(server, encryption="none"))

    assert result.step == Step.SENDER
    assert result.hint == "starttls_required"
    assert result.code == 530


def test_auth_not_offered_before_tls(settings_for, certs):
    with LoopbackSmtpServer(
        tls="starttls", certs=certs, auth={"mailbox": "secret"}
    ) as server:
        result = _check(
            settings_for(
                server,
                encryption="none",
                auth_required=True,
                username="mailbox",
                password="secret",
            )
        )

    assert result.step == Step.AUTH
    assert result.hint == "auth_not_offered"
    assert "AUTH" not in result.transcript.replace("AUTH extension", "")


def test_auth_required_by_the_server(settings_for):
    with LoopbackSmtpServer(auth={"mailbox": "secret"}) as server:
        result = _check(settings_for(server))

    assert result.step == Step.SENDER
    assert result.hint == "auth_required"
    assert result.code == 530


def test_connection_refused(settings_for):
    settings = SmtpSettings(
        host="127.0.0.1",
        port=refused_port(),
        timeout=5,
        sender_email="sender@example.com",
    )
    result = _check(settings)

    assert result.step == Step.CONNECT
    assert result.hint == "connection_refused"
    assert result.elapsed < 2


def test_empty_server_name(settings_for):
    result = _check(SmtpSettings(host=" ", sender_email="sender@example.com"))

    assert result.step == Step.RESOLVE
    assert result.hint == "dns_failed"


@pytest.mark.parametrize("encryption", ["none", "ssl"])
def test_silent_server_respects_the_deadline(encryption, certs):
    with SilentServer() as server:
        result = _check(
            SmtpSettings(
                host=server.host,
                port=server.port,
                encryption=encryption,
                timeout=2,
                sender_email="sender@example.com",
                cafile=str(certs.ca_cert),
            )
        )

    assert result.step == (Step.GREETING if encryption == "none" else Step.TLS)
    assert result.hint == "timeout"
    assert 1.9 <= result.elapsed <= 3.0
    assert server.connections == 1


def test_trickling_server_respects_the_deadline():
    with TricklingServer() as server:
        result = _check(
            SmtpSettings(
                host=server.host,
                port=server.port,
                timeout=2,
                sender_email="sender@example.com",
            )
        )

    assert result.step == Step.GREETING
    assert result.hint == "timeout"
    assert 1.9 <= result.elapsed <= 3.0
    # Whole lines kept coming: only the deadline could end the reply.
    assert result.transcript.count("S: 220-wait") >= 3


@pytest.mark.parametrize(
    ("option", "refusal", "step", "hint"),
    [
        ("reject_sender", MICROSOFT_SEND_AS, Step.SENDER, "microsoft_send_as_denied"),
        ("reject_data", MICROSOFT_SEND_AS, Step.DATA, "microsoft_send_as_denied"),
        ("reject_recipient", RELAY_DENIED, Step.RECIPIENT, "relay_denied"),
        ("reject_recipient", USER_UNKNOWN, Step.RECIPIENT, "recipient_rejected"),
        ("reject_data", SPAM, Step.DATA, "message_rejected"),
    ],
    ids=[
        "sender_not_allowed_at_mail_from",
        "sender_not_allowed_at_end_of_data",
        "relay_denied",
        "recipient_rejected",
        "message_rejected",
    ],
)
def test_refusal_stops_at_its_step_with_its_hint(
    settings_for, option, refusal, step, hint
):
    with LoopbackSmtpServer(**{option: refusal}) as server:
        result = _check(settings_for(server))

    assert result.step == step
    assert result.hint == hint
    assert (result.code, result.reply) == refusal
    assert server.messages == []
    # The message is offered only once the sender and recipient are taken.
    assert ("DATA" in server.commands) == (step == Step.DATA)


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "", "password": ""},
        {"username": "mailbox", "password": ""},
        {"login": "relay", "login_password": "", "password": "mailbox-secret"},
    ],
)
def test_auth_required_but_not_configured_does_not_connect(settings_for, credentials):
    with LoopbackSmtpServer(auth={"mailbox": "secret"}) as server:
        result = _check(settings_for(server, auth_required=True, **credentials))

    assert result.step == Step.AUTH
    assert result.hint == "auth_not_configured"
    assert result.code is None
    assert server.connections == 0
    assert server.commands == []


def test_invalid_sender_address_does_not_connect(settings_for):
    with LoopbackSmtpServer() as server:
        result = _check(settings_for(server, sender_email="not an address"))

    assert result.step == Step.SENDER
    assert result.hint == "sender_invalid"
    assert server.connections == 0


@pytest.mark.parametrize("encryption", ["starttls", "ssl"])
def test_untrusted_certificate(settings_for, certs, encryption):
    with LoopbackSmtpServer(tls=encryption, certs=certs, cert="self_signed") as server:
        result = _check(settings_for(server, host="localhost"))

    assert result.step == Step.TLS
    assert result.hint == "certificate_untrusted"
    assert server.messages == []


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_certificate_for_another_host(settings_for, certs, host):
    with LoopbackSmtpServer(tls="ssl", certs=certs, cert="other_host") as server:
        result = _check(settings_for(server, host=host))

    assert result.step == Step.TLS
    assert result.hint == "certificate_hostname_mismatch"
    assert "mismatch" in result.error


def test_certificate_of_an_unknown_authority_without_cafile(settings_for, certs):
    with LoopbackSmtpServer(tls="ssl", certs=certs) as server:
        result = _check(settings_for(server, cafile=None))

    assert result.step == Step.TLS
    assert result.hint == "certificate_untrusted"


def test_replaced_ca_file_is_read_again(settings_for, certs, tmp_path):
    # TLS contexts are shared between connections; one built from an old
    # version of a CA file must not outlive the file's content.
    cafile = tmp_path / "ca.pem"
    cafile.write_bytes(certs.ca_cert.read_bytes())
    with LoopbackSmtpServer(tls="ssl", certs=certs) as server:
        trusted = send_test_message(settings_for(server, cafile=str(cafile)), "Test")
        cafile.write_bytes(certs.self_signed_cert.read_bytes() + b"\n")
        untrusted = _check(settings_for(server, cafile=str(cafile)))

    assert trusted.ok, trusted.error
    assert untrusted.step == Step.TLS
    assert untrusted.hint == "certificate_untrusted"


def test_login_without_encryption_is_refused_before_connecting(settings_for):
    with LoopbackSmtpServer(auth={"mailbox": "right"}) as server:
        settings = settings_for(
            server,
            auth_required=True,
            username="mailbox",
            password="right",
            cleartext_login=False,
        )
        result = _check(settings)
        with pytest.raises(SmtpEngineError) as caught:
            open_connection(settings)
    assert (result.step, result.hint) == (Step.AUTH, "cleartext_login")
    assert caught.value.result.hint == "cleartext_login"
    assert server.connections == 0
    assert "right" not in result.transcript
