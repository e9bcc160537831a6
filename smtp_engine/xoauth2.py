"""Log in with an OAuth 2.0 access token (SASL XOAUTH2), which the caller renews."""


def xoauth2_string(user, token):
    """Return the initial client response of XOAUTH2, before base64."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def login_xoauth2(session, user, token):
    """Log ``session`` in as ``user`` with the bearer ``token``.

    A server that refuses the token first sends a 334 challenge with its
    reasons; the empty answer to it brings the final refusal, which smtplib
    raises as ``SMTPAuthenticationError``.
    """

    def authobject(challenge=None):
        return xoauth2_string(user, token) if challenge is None else ""

    return session.auth("XOAUTH2", authobject, initial_response_ok=True)
