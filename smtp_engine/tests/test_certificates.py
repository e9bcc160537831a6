"""Certificate pinning, and the details of a refused certificate."""

import datetime
import hashlib

import pytest

from smtp_engine import SmtpEngineError, SmtpSettings, Step, open_connection
from smtp_engine import send_test_message as send
from smtp_engine.certificate import CertificateDetails, format_fingerprint
from smtp_engine.tests.servers import LoopbackSmtpServer

USER = "mailbox"
PASSWORD = "pinned-secret"


def _auth(**values):
    return dict(auth_required=True, username=USER, password=PASSWORD, **values)


@pytest.mark.parametrize("encryption", ["ssl", "starttls"])
def test_untrusted_certificate_is_described(settings_for, certs, encryption):
    with LoopbackSmtpServer(tls=encryption, certs=certs, cert="self_signed") as server:
        result = send(settings_for(server, host="localhost"), "Main")

    assert result.hint == "certificate_untrusted"
    details = result.certificate
    assert details.fingerprint == format_fingerprint(certs.sha256("self_signed"))
    assert details.subject == "CN=localhost"
    assert details.issuer == "CN=localhost"
    assert details.alt_names == ("DNS:localhost", "IP:127.0.0.1", "IP:::1")
    now = datetime.datetime.now(datetime.timezone.utc)
    assert details.not_before < now < details.not_after


def test_certificate_for_another_name_is_described(settings_for, certs):
    with LoopbackSmtpServer(tls="ssl", certs=certs, cert="other_host") as server:
        result = send(settings_for(server, host="localhost"), "Main")

    assert result.hint == "certificate_hostname_mismatch"
    assert result.certificate.issuer == "CN=email_account test CA"
    assert result.certificate.alt_names == ("DNS:mail.example.invalid",)


def test_trusted_certificate_carries_no_details(settings_for, certs):
    with LoopbackSmtpServer(tls="ssl", certs=certs) as server:
        result = send(settings_for(server), "Main")

    assert result.ok, result.transcript
    assert result.certificate is None


@pytest.mark.parametrize("encryption", ["ssl", "starttls"])
def test_pinned_certificate_is_accepted_without_a_ca(settings_for, certs, encryption):
    pin = format_fingerprint(certs.sha256("self_signed")).lower()
    with LoopbackSmtpServer(
        tls=encryption, certs=certs, cert="self_signed", auth={USER: PASSWORD}
    ) as server:
        result = send(
            settings_for(server, cafile=None, pinned_certificate=pin, **_auth()),
            "Main",
        )

    assert result.ok, result.transcript
    assert server.messages[0].auth_login == USER
    assert "pinned certificate" in result.transcript


@pytest.mark.parametrize("encryption", ["ssl", "starttls"])
def test_changed_certificate_is_refused_before_login(settings_for, certs, encryption):
    old_pin = certs.sha256("server")
    with LoopbackSmtpServer(
        tls=encryption, certs=certs, cert="self_signed", auth={USER: PASSWORD}
    ) as server:
        result = send(settings_for(server, pinned_certificate=old_pin, **_auth()), "M")

    assert result.step == Step.TLS
    assert result.hint == "certificate_changed"
    assert result.hint_text()
    assert result.certificate.fingerprint == format_fingerprint(
        certs.sha256("self_signed")
    )
    assert "AUTH" not in server.commands
    assert server.commands == ([] if encryption == "ssl" else ["EHLO"])


def test_open_connection_refuses_a_changed_certificate(settings_for, certs):
    with LoopbackSmtpServer(
        tls="starttls", certs=certs, cert="self_signed", auth={USER: PASSWORD}
    ) as server:
        settings = settings_for(
            server, pinned_certificate=certs.sha256("server"), **_auth()
        )
        with pytest.raises(SmtpEngineError) as caught:
            open_connection(settings)

    assert caught.value.result.hint == "certificate_changed"
    assert caught.value.result.certificate is not None
    assert "AUTH" not in server.commands


@pytest.mark.parametrize("pin", ["abc", "g" * 64, "12:34"])
def test_malformed_pin_is_refused(pin):
    with pytest.raises(ValueError, match="SHA-256"):
        SmtpSettings(host="localhost", pinned_certificate=pin)


def test_pin_is_kept_normalized(certs):
    pin = certs.sha256("server")
    settings = SmtpSettings(
        host="localhost", pinned_certificate=format_fingerprint(pin)
    )

    assert settings.pinned_certificate == pin


def test_unparsable_certificate_still_has_its_fingerprint():
    details = CertificateDetails.from_der(b"not a certificate")

    assert details.fingerprint == format_fingerprint(
        hashlib.sha256(b"not a certificate").hexdigest()
    )
    assert details.subject == ""
