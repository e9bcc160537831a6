"""XOAUTH2: logging in with an OAuth 2.0 access token, as Microsoft 365 and
Google require, and the hints for the providers' own refusals."""

import base64

import pytest

from smtp_engine import SmtpEngineError, Step, open_connection, send_test_message
from smtp_engine.tests.servers import LoopbackSmtpServer
from smtp_engine.xoauth2 import xoauth2_string

USER = "sales@example.com"
TOKEN = "EwBwA8l6BAAU.access-token-of-the-mailbox"


def _oauth_settings(settings_for, server, token=TOKEN, **values):
    return settings_for(
        server,
        auth_required=True,
        username=USER,
        oauth_token=token,
        sender_email=USER,
        **values,
    )


def _leaks(token):
    return (token, base64.b64encode(xoauth2_string(USER, token).encode()).decode())


def test_test_message_logs_in_with_the_bearer_token(settings_for, certs):
    with LoopbackSmtpServer(
        tls="starttls", certs=certs, oauth_tokens={USER: TOKEN}
    ) as server:
        result = send_test_message(_oauth_settings(settings_for, server), "Sales")

    assert result.ok, result.transcript
    assert server.oauth_logins == [(USER, TOKEN)]
    assert server.messages[0].auth_login == USER
    assert "C: AUTH XOAUTH2 ********" in result.transcript.splitlines()


def test_open_connection_logs_in_with_the_bearer_token(settings_for, certs):
    with LoopbackSmtpServer(
        tls="ssl", certs=certs, oauth_tokens={USER: TOKEN}
    ) as server:
        session = open_connection(_oauth_settings(settings_for, server))
        try:
            session.sendmail(USER, [USER], b"Subject: real\r\n\r\nmail\r\n")
        finally:
            session.quit()

    assert server.oauth_logins == [(USER, TOKEN)]
    assert server.messages[0].rcpt_tos == [USER]


def test_refused_token_gives_the_sign_in_hint_and_leaks_nothing(settings_for, certs):
    with LoopbackSmtpServer(
        tls="starttls",
        certs=certs,
        oauth_tokens={USER: "the valid token"},
        auth_refusal="535 5.7.3 Authentication unsuccessful",
    ) as server:
        settings = _oauth_settings(settings_for, server, token="revoked-token")
        result = send_test_message(settings, "Sales")

    assert not result.ok
    assert result.step == Step.AUTH
    assert result.code == 535
    assert result.hint == "oauth_token_refused"
    # The server's explanation came as a challenge, answered with nothing.
    assert "S: 334 " in result.transcript
    for leak in _leaks("revoked-token"):
        assert leak not in result.transcript
        assert leak not in result.error
        assert leak not in repr(settings)
        assert leak not in repr(result)


def test_refused_token_when_opening_a_connection(settings_for, certs):
    with (
        LoopbackSmtpServer(
            tls="ssl", certs=certs, oauth_tokens={USER: "the valid token"}
        ) as server,
        pytest.raises(SmtpEngineError) as caught,
    ):
        open_connection(_oauth_settings(settings_for, server, token="expired"))

    assert caught.value.result.hint == "oauth_token_refused"
    for leak in _leaks("expired"):
        assert leak not in str(caught.value)
        assert leak not in caught.value.result.transcript


PROVIDER_REFUSALS = [
    # (server reply at AUTH, OAuth or password, expected hint)
    (
        (
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is "
            "disabled for the Tenant."
        ),
        True,
        "microsoft_smtp_auth_disabled",
    ),
    (
        "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.",
        False,
        "microsoft_basic_auth_disabled",
    ),
    (
        (
            "534 5.7.9 Application-specific password required. Learn more at "
            "https://support.google.com/mail/?p=InvalidSecondFactor"
        ),
        False,
        "google_app_password_required",
    ),
    (
        (
            "535 5.7.8 Username and Password not accepted. For more information, go "
            "to https://support.google.com/mail/?p=BadCredentials"
        ),
        False,
        "google_login_refused",
    ),
    (
        "535 5.7.8 Username and Password not accepted.",
        True,
        "oauth_token_refused",
    ),
    ("535 5.7.3 Authentication unsuccessful", True, "oauth_token_refused"),
]


@pytest.mark.parametrize(("reply", "oauth", "hint"), PROVIDER_REFUSALS)
def test_provider_refusals_at_login(settings_for, certs, reply, oauth, hint):
    credentials = {"oauth_tokens": {USER: "other"}} if oauth else {"auth": {USER: "x"}}
    with LoopbackSmtpServer(
        tls="ssl", certs=certs, auth_refusal=reply, **credentials
    ) as server:
        if oauth:
            settings = _oauth_settings(settings_for, server, token="refused")
        else:
            settings = settings_for(
                server, auth_required=True, username=USER, password="wrong"
            )
        result = send_test_message(settings, "Sales")

    assert result.step == Step.AUTH, result.transcript
    assert result.code == int(reply[:3])
    assert result.hint == hint


@pytest.mark.parametrize(
    ("reject", "hint"),
    [
        (
            {"reject_sender": (530, "5.7.57 Client not authenticated to send mail.")},
            "microsoft_client_not_authenticated",
        ),
        (
            {
                "reject_data": (
                    554,
                    (
                        "5.2.252 SendAsDenied; sales@example.com not allowed to send "
                        "as boss@example.com; STOREDRV.Submission.Exception"
                    ),
                )
            },
            "microsoft_send_as_denied",
        ),
    ],
)
def test_microsoft_refusals_after_login(settings_for, certs, reject, hint):
    with LoopbackSmtpServer(
        tls="ssl", certs=certs, oauth_tokens={USER: TOKEN}, **reject
    ) as server:
        result = send_test_message(_oauth_settings(settings_for, server), "Sales")

    assert not result.ok
    assert result.hint == hint
