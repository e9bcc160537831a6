"""Replies of Microsoft 365 and Google that deserve a hint of their own.

Both providers refuse with enhanced status codes (RFC 3463) that name the
cause precisely; the generic hints of ``diagnosis`` would only say "login
refused". Each rule gives a key of ``HINTS``.
"""

import re

from .result import Step


def _status(code):
    # An enhanced status code as a whole word: 5.7.8 is not 5.7.80.
    return re.compile(rf"(?<![\d.]){re.escape(code)}(?![\d])")


_SMTP_AUTH_DISABLED = _status("5.7.139")
_BASIC_AUTH_DISABLED = "basic authentication is disabled"
_NOT_AUTHENTICATED = _status("5.7.57")
_SEND_AS_DENIED = _status("5.7.60")
_APP_PASSWORD_REQUIRED = _status("5.7.9")
_CREDENTIALS_REFUSED = _status("5.7.8")
_LOGIN_REFUSED_CODES = (534, 535)


def diagnose_provider_reply(step, code, text, settings=None):
    """Return the hint key for a provider's refusal, or None if not one."""
    oauth = bool(settings and settings.oauth_token)
    if _SMTP_AUTH_DISABLED.search(text):
        if not oauth and _BASIC_AUTH_DISABLED in text.lower():
            return "microsoft_basic_auth_disabled"
        return "microsoft_smtp_auth_disabled"
    if _NOT_AUTHENTICATED.search(text):
        return "microsoft_client_not_authenticated"
    if _SEND_AS_DENIED.search(text) or "sendasdenied" in text.lower():
        return "microsoft_send_as_denied"
    if step != Step.AUTH or code not in _LOGIN_REFUSED_CODES:
        return None
    if oauth:
        return "oauth_token_refused"
    if _APP_PASSWORD_REQUIRED.search(text):
        return "google_app_password_required"
    if _CREDENTIALS_REFUSED.search(text) and "username and password" in text.lower():
        return "google_login_refused"
    return None
