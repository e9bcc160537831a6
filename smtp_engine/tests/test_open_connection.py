"""open_connection: the session used for real sending."""

import contextlib
import smtplib
from email.message import EmailMessage

import pytest

from smtp_engine import SmtpEngineError, SmtpSettings, Step, open_connection
from smtp_engine.tests.servers import LoopbackSmtpServer, SilentServer


def _message():
    message = EmailMessage()
    message["From"] = "sender@example.com"
    message["To"] = "someone@example.com"
    message["Subject"] = "Invoice"
    message.set_content("Please find the invoice attached.")
    return message


def test_returns_an_authenticated_session(settings_for, certs):
    with LoopbackSmtpServer(
        tls="starttls", require_starttls=True, certs=certs, auth={"mailbox": "pw"}
    ) as server:
        settings = settings_for(
            server, auth_required=True, username="mailbox", password="pw", timeout=7
        )
        with contextlib.closing(open_connection(settings)) as session:
            assert isinstance(session, smtplib.SMTP)
            assert session.sock.gettimeout() == 7
            assert session.sock.version() is not None
            session.send_message(_message())
            session.send_message(_message(), to_addrs=["other@example.com"])
            session.quit()

    assert [m.rcpt_tos for m in server.messages] == [
        ["someone@example.com"],
        ["other@example.com"],
    ]
    assert {m.auth_login for m in server.messages} == {"mailbox"}
    assert server.messages[0].message["Subject"] == "Invoice"


def test_refused_login_raises_and_closes(settings_for, certs):
    with LoopbackSmtpServer(tls="ssl", certs=certs, auth={"mailbox": "pw"}) as server:
        settings = settings_for(
            server, auth_required=True, username="mailbox", password="wrong"
        )
        with pytest.raises(SmtpEngineError) as caught:
            open_connection(settings)

    result = caught.value.result
    assert not result.ok
    assert result.step == Step.AUTH
    assert result.hint == "login_refused"
    assert result.code == 535
    assert "wrong" not in str(caught.value)
    assert isinstance(caught.value.__cause__, smtplib.SMTPAuthenticationError)


def test_missing_credentials_raise_before_connecting(settings_for):
    with (
        LoopbackSmtpServer(auth={"mailbox": "pw"}) as server,
        pytest.raises(SmtpEngineError) as caught,
    ):
        open_connection(settings_for(server, auth_required=True))

    assert caught.value.result.hint == "auth_not_configured"
    assert caught.value.result.step == Step.AUTH
    assert server.connections == 0


def test_set_up_is_bounded_by_the_timeout():
    with SilentServer() as server:
        settings = SmtpSettings(host=server.host, port=server.port, timeout=1)
        with pytest.raises(SmtpEngineError) as caught:
            open_connection(settings)

    assert caught.value.result.step == Step.GREETING
    assert caught.value.result.hint == "timeout"
    assert caught.value.result.elapsed <= 2
