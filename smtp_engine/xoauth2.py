"""Log in with an OAuth 2.0 access token: the SASL mechanism XOAUTH2.

Microsoft 365 and Google accept it on their SMTP servers in place of a
password. The token is obtained and renewed by the caller (the engine has no
HTTP client and no database); the engine only presents it.
"""

MECHANISM = "XOAUTH2"


def xoauth2_string(user, token):
    """Return the initial client response of XOAUTH2, before base64."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def login_xoauth2(session, user, token):
    """Log ``session`` in as ``user`` with the bearer ``token``.

    A server that refuses the token first sends a 334 challenge with its
    reasons (JSON in base64); the client answers it with an empty line, and
    the server then gives its final refusal, which smtplib raises as
    ``SMTPAuthenticationError``.
    """

    def authobject(challenge=None):
        return xoauth2_string(user, token) if challenge is None else ""

    return session.auth(MECHANISM, authobject, initial_response_ok=True)
