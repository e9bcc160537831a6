"""User-facing English texts of the SMTP engine.

Callers translate them through the ``translate`` argument of the public
functions; ``_lt`` only marks them for Odoo's translation exporter.
"""


def untranslated(text: str) -> str:
    """The default ``translate``: keep the English text."""
    return text


_lt = untranslated

STEP_LABELS = {
    "resolve": _lt("Looking up the server name"),
    "connect": _lt("Connecting to the server"),
    "greeting": _lt("Waiting for the server's greeting"),
    "ehlo": _lt("Introducing ourselves to the server (EHLO)"),
    "tls": _lt("Setting up the encrypted connection (TLS)"),
    "auth": _lt("Logging in"),
    "sender": _lt("Giving the sender address (MAIL FROM)"),
    "recipient": _lt("Giving the recipient address (RCPT TO)"),
    "data": _lt("Sending the message (DATA)"),
    "quit": _lt("Closing the connection (QUIT)"),
    "done": _lt("Done"),
}

HINTS = {
    "dns_failed": _lt(
        "The server name could not be found. Check the spelling of the SMTP "
        "server name, or enter its IP address."
    ),
    "connection_refused": _lt(
        "Nothing accepted the connection on this server and port. Check the "
        "server name and the port, and that no firewall blocks the connection."
    ),
    "timeout": _lt(
        "The server did not answer in time. Check the server name and the port, "
        "or raise the time-out; if the port uses SSL/TLS (usually 465), choose "
        "SSL/TLS."
    ),
    "disconnected": _lt(
        "The server closed the connection unexpectedly. Check that the port and "
        "the security setting match what the provider documents."
    ),
    "ssl_on_plain_port": _lt(
        "SSL/TLS was chosen, but this port speaks plain SMTP. Choose STARTTLS "
        "(usually port 587), or no encryption or STARTTLS on port 25."
    ),
    "plain_on_ssl_port": _lt(
        "This port expects an encrypted connection from the first byte. Choose "
        "SSL/TLS (usually port 465)."
    ),
    "starttls_not_offered": _lt(
        "The server does not offer STARTTLS on this port, so the message was not "
        "sent in clear text. Choose SSL/TLS (usually port 465) or ask the "
        "provider which port supports STARTTLS (usually 587)."
    ),
    "starttls_required": _lt(
        "The server accepts mail only over an encrypted connection. Choose "
        "STARTTLS (usually port 587) or SSL/TLS (usually port 465)."
    ),
    "certificate_untrusted": _lt(
        "The server's certificate is not trusted (it may be self-signed or "
        "expired). Use the server name the provider documents, or ask the "
        "provider for a valid certificate."
    ),
    "certificate_hostname_mismatch": _lt(
        "The server's certificate was issued for another name. Enter the server "
        "name exactly as it appears in the provider's documentation."
    ),
    "certificate_changed": _lt(
        "The server's certificate is not the pinned one. If the provider "
        "renewed its certificate, check the new fingerprint with the provider "
        "and pin it again; otherwise the connection may be intercepted."
    ),
    "tls_failed": _lt(
        "The encrypted connection could not be set up. Check the security "
        "setting and the port."
    ),
    "auth_not_offered": _lt(
        "The server does not offer a login on this connection, often because it "
        "requires encryption first. Choose STARTTLS or SSL/TLS."
    ),
    "cleartext_login": _lt(
        "The server requires a login, but the connection security is None: "
        "the password would travel unencrypted, so nothing was sent. Choose "
        "STARTTLS (usually port 587) or SSL/TLS (usually port 465)."
    ),
    "auth_not_configured": _lt(
        "The server requires authentication, but no user name or password is "
        "filled in. Enter the account's user name and password."
    ),
    "credentials_not_encodable": _lt(
        "The user name or password contains a character that cannot be sent "
        "to the server. Enter them again."
    ),
    "auth_required": _lt(
        "The server requires a login before it accepts mail. Tick 'Server "
        "requires authentication' and enter the user name and password."
    ),
    "login_refused": _lt(
        "The server refused the user name or password. Check them; some "
        "providers require an app password or that SMTP login is enabled for "
        "the mailbox."
    ),
    "sender_invalid": _lt(
        "The sender e-mail address is missing or not valid. Enter the account's "
        "full e-mail address, for example name@example.com."
    ),
    "sender_not_allowed": _lt(
        "The server does not allow this login to send as this sender address. "
        "Use the mailbox's own address as the sender, or ask the provider to "
        "grant 'send as' permission."
    ),
    "relay_denied": _lt(
        "The server refused to relay the message. Usually the server requires "
        "authentication: tick 'Server requires authentication' and enter the "
        "login."
    ),
    "recipient_rejected": _lt(
        "The server refused the recipient address. Check the sender e-mail "
        "address, to which the test message is sent."
    ),
    "message_rejected": _lt(
        "The server refused the message itself, for example as spam or as too "
        "large. Read the server's reply for the reason."
    ),
    "greeting_refused": _lt(
        "The server refused the connection right away. It may not accept mail "
        "from this machine's address; ask the provider."
    ),
    "server_error": _lt(
        "The server reported an error. Read the server's reply and the "
        "transcript for details."
    ),
    # Microsoft 365, Google and OAuth 2.0 (see diagnosis.py)
    "oauth_token_refused": _lt(
        "The sign-in has expired or was revoked: connect the account again."
    ),
    "microsoft_smtp_auth_disabled": _lt(
        "Microsoft 365 has SMTP AUTH turned off for the organisation or for "
        "this mailbox (5.7.139). An administrator turns it on for the mailbox "
        "in the Microsoft 365 admin center (Users, Active users, the mailbox, "
        "Mail, Manage email apps, Authenticated SMTP) and for the "
        "organisation in the Exchange admin center (Settings, Mail flow, "
        "clear 'Turn off SMTP AUTH protocol for your organization'); the "
        "security defaults of Microsoft Entra ID block it too."
    ),
    "microsoft_basic_auth_disabled": _lt(
        "Microsoft 365 no longer accepts a password for SMTP from this "
        "mailbox. Choose 'Microsoft 365 / Outlook (OAuth)' as the "
        "authentication and connect the account."
    ),
    "microsoft_client_not_authenticated": _lt(
        "Microsoft 365 accepts mail on this server only from a mailbox that "
        "has logged in (5.7.57). Choose 'Microsoft 365 / Outlook (OAuth)' as "
        "the authentication, with smtp.office365.com, port 587 and STARTTLS, "
        "and connect the account."
    ),
    "microsoft_send_as_denied": _lt(
        "Microsoft 365 does not let this mailbox send as the sender address "
        "(5.7.60, SendAsDenied). Use the mailbox's own address as the sender, "
        "or have an Exchange administrator grant the mailbox 'Send As' "
        "permission on that address."
    ),
    "google_app_password_required": _lt(
        "Google requires an app password for this account, because 2-Step "
        "Verification is on (5.7.9). Create an app password in the Google "
        "account (Security, App passwords) and enter it as the password, or "
        "choose 'Google (OAuth)' as the authentication and connect the "
        "account."
    ),
    "google_login_refused": _lt(
        "Google did not accept the user name and password (5.7.8). Enter the "
        "full Gmail address as the user name and an app password, not the "
        "account's normal password, or choose 'Google (OAuth)' as the "
        "authentication and connect the account."
    ),
}

SECURITY_LABELS = {
    "none": _lt("None"),
    "starttls": _lt("STARTTLS"),
    "ssl": _lt("SSL/TLS"),
}

TEST_SUBJECT = _lt("Test message from e-mail account %(account)s")
TEST_INTRO = _lt(
    "This message was sent to check the settings of the e-mail account "
    "%(account)s. If you can read it, the account can send e-mail."
)
TEST_LINES = (
    _lt("Server: %(host)s"),
    _lt("Port: %(port)s"),
    _lt("Security: %(security)s"),
    _lt("Login: %(login)s"),
    _lt("Sent at: %(date)s"),
)
TEST_NO_LOGIN = _lt("(no authentication)")
TEST_CLOSING = _lt("No reply is needed.")

# Every text of the test message, for callers that translate them up front
# (for example before handing the work to threads that cannot translate).
MESSAGE_TEXTS = (
    TEST_SUBJECT,
    TEST_INTRO,
    *TEST_LINES,
    TEST_NO_LOGIN,
    TEST_CLOSING,
    *SECURITY_LABELS.values(),
)


def render(text, translate, params):
    """Translate ``text`` and fill it in; a translation that does not fit
    falls back to the English text rather than failing."""
    try:
        return translate(text) % params
    except (KeyError, ValueError, TypeError):
        return text % params
