"""The round trip against real Dovecot, fed by a real SMTP server, on loopback."""

import time
from dataclasses import replace

import pytest

from smtp_engine import send_test_message
from smtp_engine.roundtrip import (
    ImapSettings,
    RoundTripStep,
    find_message,
    parse_authentication_results,
)
from smtp_engine.tests.dovecot import (
    DeliveringSmtpServer,
    DovecotServer,
    dovecot_missing,
)
from smtp_engine.tests.servers import _SocketServer, refused_port

USER = "sales@example.com"
PASSWORD = "imap-Pa55-word"
FAILING = (
    "mx.example.test; spf=fail (sender IP is 127.0.0.1) "
    "smtp.mailfrom=example.com; dkim=none (no signature); "
    'dmarc=fail reason="SPF and DKIM failed" header.from=example.com'
)


@pytest.fixture(scope="module")
def dovecot(certs):
    if missing := dovecot_missing():
        pytest.skip(missing)
    with DovecotServer(certs, {USER: PASSWORD}) as server:
        yield server


@pytest.fixture
def imap_settings(dovecot, certs):
    return ImapSettings(
        host=dovecot.host,
        port=dovecot.port,
        encryption="ssl",
        username=USER,
        password=PASSWORD,
        cafile=str(certs.ca_cert),
    )


def submit(dovecot, settings_for, **server_options):
    """Send the test message through a delivering server; return its result."""
    server_options.setdefault("authentication_results", FAILING)
    with DeliveringSmtpServer(dovecot, USER, **server_options) as smtp:
        result = send_test_message(settings_for(smtp, sender_email=USER), "Sales")
    assert result.ok, result.transcript
    return result, time.monotonic()


def test_message_delivered_to_the_inbox_is_found_there(
    dovecot, settings_for, imap_settings
):
    sent, submitted = submit(dovecot, settings_for)

    found = find_message(imap_settings, sent.message_id, wait=5, submitted=submitted)

    assert found.state == "inbox", found.transcript
    assert 0 <= found.arrival < 5
    assert found.hops[-1].startswith("from client.example.test by mx.example.test")


def test_message_filed_as_spam_is_found_in_the_junk_folder(
    dovecot, settings_for, imap_settings
):
    sent, submitted = submit(dovecot, settings_for, folder="Junk")

    found = find_message(imap_settings, sent.message_id, wait=5, submitted=submitted)

    assert found.state == "junk", found.transcript


def test_message_that_never_arrives_is_not_found_within_the_wait(
    dovecot, settings_for, imap_settings
):
    sent, submitted = submit(dovecot, settings_for, folder=None)

    found = find_message(imap_settings, sent.message_id, wait=1.5, submitted=submitted)

    assert found.state == "not_found"
    assert found.ok
    assert 1.0 <= found.elapsed < 2.5


def test_message_arriving_late_is_found_and_timed(dovecot, settings_for, imap_settings):
    with DeliveringSmtpServer(dovecot, USER, delay=0.6) as smtp:
        sent = send_test_message(settings_for(smtp, sender_email=USER), "Sales")
        submitted = time.monotonic()

        found = find_message(
            imap_settings, sent.message_id, wait=5, submitted=submitted
        )

    assert found.state == "inbox"
    assert 0.6 <= found.arrival < 3


def test_found_message_is_deleted_from_the_mailbox(
    dovecot, settings_for, imap_settings
):
    sent, submitted = submit(dovecot, settings_for)

    found = find_message(imap_settings, sent.message_id, wait=5, submitted=submitted)

    assert found.deleted
    raws = dovecot.folder_messages(USER, "INBOX")
    assert not [raw for raw in raws if sent.message_id.encode() in raw]


def test_found_message_is_kept_when_asked(dovecot, settings_for, imap_settings):
    sent, submitted = submit(dovecot, settings_for)

    found = find_message(
        imap_settings, sent.message_id, wait=5, submitted=submitted, delete=False
    )

    assert not found.deleted
    raws = dovecot.folder_messages(USER, "INBOX")
    assert [raw for raw in raws if sent.message_id.encode() in raw]


def test_verdicts_of_the_received_copy_are_reported(
    dovecot, settings_for, imap_settings
):
    sent, submitted = submit(dovecot, settings_for)

    found = find_message(imap_settings, sent.message_id, wait=5, submitted=submitted)

    verdicts = found.verdicts
    assert (verdicts["spf"].result, verdicts["spf"].reason) == (
        "fail",
        "sender IP is 127.0.0.1",
    )
    assert (verdicts["dkim"].result, verdicts["dkim"].reason) == (
        "none",
        "no signature",
    )
    assert (verdicts["dmarc"].result, verdicts["dmarc"].reason) == (
        "fail",
        "SPF and DKIM failed",
    )


def test_copy_without_authentication_results_has_no_verdicts(
    dovecot, settings_for, imap_settings
):
    sent, submitted = submit(dovecot, settings_for, authentication_results=None)

    found = find_message(imap_settings, sent.message_id, wait=5, submitted=submitted)

    assert found.state == "inbox"
    assert found.verdicts == {}


def test_refused_login_is_its_own_step_and_never_shows_the_password(
    certs, imap_settings
):
    # A server of its own: Dovecot slows down logins after a refused one.
    with DovecotServer(certs, {USER: PASSWORD}) as refusing:
        settings = replace(imap_settings, port=refusing.port, password="wrong-Pa55")

        found = find_message(settings, "<x@example.com>", wait=5)

    assert (found.state, found.step, found.hint) == (
        "failed",
        RoundTripStep.LOGIN,
        "imap_login_refused",
    )
    assert "wrong-Pa55" not in found.transcript + found.error
    assert "LOGIN ********" in found.transcript


def _refused_at_tls(settings):
    """The hint of a look-up that TLS ends before any login."""
    found = find_message(settings, "<x@example.com>", wait=5)

    assert found.step == RoundTripStep.TLS, found.transcript
    assert "LOGIN" not in found.transcript
    return found.hint


def test_certificate_of_an_untrusted_authority_is_refused(imap_settings):
    settings = replace(imap_settings, cafile=None)

    assert _refused_at_tls(settings) == "imap_certificate_untrusted"


def test_closed_port_is_reported_as_refused_connection(imap_settings):
    settings = replace(imap_settings, port=refused_port())

    found = find_message(settings, "<x@example.com>", wait=5)

    assert (found.step, found.hint) == (
        RoundTripStep.CONNECT,
        "imap_connection_refused",
    )


def test_missing_password_does_not_connect(imap_settings):
    settings = replace(imap_settings, password="")

    found = find_message(settings, "<x@example.com>", wait=5)

    assert (found.hint, found.transcript) == (
        "imap_not_configured",
        "* Not connecting: no user name or password",
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            (
                "mx.google.com; spf=pass (google.com: domain of a@example.com "
                "designates 192.0.2.1 as permitted sender) smtp.mailfrom=a@example.com"
            ),
            {
                "spf": (
                    "pass",
                    (
                        "google.com: domain of a@example.com designates "
                        "192.0.2.1 as permitted sender"
                    ),
                )
            },
        ),
        ("example.net 1; none", {}),
        (
            (
                'mx.example.net; dkim = fail reason="bad signature" '
                "header.d=example.com; "
                "dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.com"
            ),
            {
                "dkim": ("fail", "bad signature"),
                "dmarc": ("pass", "p=REJECT sp=REJECT dis=NONE"),
            },
        ),
        (
            "mx.example.net; spf=softfail smtp.mailfrom=example.com; spf=pass",
            {"spf": ("softfail", "")},
        ),
    ],
)
def test_authentication_results_are_parsed(header, expected):
    verdicts = parse_authentication_results(header)

    assert {m: (v.result, v.reason) for m, v in verdicts.items()} == expected


def test_delivered_copy_tells_responders_not_to_answer(dovecot, settings_for):
    sent, _submitted = submit(dovecot, settings_for)

    raws = dovecot.folder_messages(USER, "INBOX")
    copy = next(raw for raw in raws if sent.message_id.encode() in raw)
    assert b"\nAuto-Submitted: auto-generated\n" in copy.replace(b"\r\n", b"\n")
    assert b"\nX-Auto-Response-Suppress: All\n" in copy.replace(b"\r\n", b"\n")


class TricklingImapServer(_SocketServer):
    """Starts an IMAP greeting and never ends it, one byte at a time."""

    def _serve(self, client):
        while not self._stop.wait(0.05):
            try:
                client.sendall(b"*")
            except OSError:
                return


class LoginDisabledImapServer(_SocketServer):
    """Greets in clear text with LOGINDISABLED, as IMAP servers do without TLS."""

    CAPABILITY = b"CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED"

    def _serve(self, client):
        try:
            client.sendall(b"* OK [" + self.CAPABILITY + b"] ready\r\n")
            for line in client.makefile("rb"):
                tag, _sep, command = line.strip().partition(b" ")
                if command.upper() == b"CAPABILITY":
                    client.sendall(b"* " + self.CAPABILITY + b"\r\n")
                client.sendall(tag + b" OK done\r\n")
        except OSError:
            return


def test_starttls_secures_the_session_before_the_login(dovecot, imap_settings):
    settings = replace(imap_settings, port=dovecot.starttls_port, encryption="starttls")

    found = find_message(settings, "<nowhere@example.com>", wait=0.5)

    assert found.state == "not_found", found.transcript
    transcript = found.transcript
    assert transcript.index("TLS established") < transcript.index("LOGIN ********")


def test_clear_text_login_refused_by_the_server_is_never_sent(imap_settings):
    # Dovecot counts loopback as secure and allows the login there: this
    # server answers as Dovecot does on any other address.
    with LoginDisabledImapServer() as server:
        settings = replace(imap_settings, port=server.port, encryption="none")

        found = find_message(settings, "<nowhere@example.com>", wait=5)

    assert (found.step, found.hint) == (
        RoundTripStep.LOGIN,
        "imap_encryption_required",
    )
    assert "LOGIN" not in found.transcript.replace("LOGINDISABLED", "")


def test_pinned_certificate_is_accepted_without_an_authority(certs, imap_settings):
    settings = replace(
        imap_settings, cafile=None, pinned_certificate=certs.sha256("server")
    )

    found = find_message(settings, "<nowhere@example.com>", wait=0.5)

    assert found.ok, found.transcript
    assert "pinned certificate" in found.transcript


def test_other_certificate_than_the_pinned_one_is_refused(certs, imap_settings):
    settings = replace(imap_settings, pinned_certificate=certs.sha256("other_host"))

    assert _refused_at_tls(settings) == "imap_certificate_changed"


def test_trickling_server_cannot_hold_the_check_past_its_wait(imap_settings):
    with TricklingImapServer() as server:
        settings = replace(imap_settings, port=server.port, encryption="none")
        started = time.monotonic()

        found = find_message(settings, "<nowhere@example.com>", wait=1)

        took = time.monotonic() - started
    assert found.hint == "imap_timeout"
    assert took < 1.5
