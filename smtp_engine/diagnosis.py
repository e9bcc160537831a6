"""The one place where failures are mapped to hints (keys of ``HINTS``)."""

import re
import smtplib
import socket
import ssl

from .certificate import CertificateChangedError
from .result import CredentialsEncodingError, Step
from .settings import SmtpSettings

# OpenSSL reasons seen when a TLS client reads a plain-text SMTP greeting.
_NOT_TLS_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "RECORD_LAYER_FAILURE",
        "UNKNOWN_PROTOCOL",
        "PACKET_LENGTH_TOO_LONG",
        "HTTP_REQUEST",
        "UNEXPECTED_RECORD",
    }
)
# X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
_NAME_MISMATCH_CODES = frozenset({62, 64})
# The failures whose result carries the details of the server's certificate.
CERTIFICATE_HINTS = frozenset(
    {"certificate_untrusted", "certificate_hostname_mismatch", "certificate_changed"}
)
_LOGIN_REFUSED_CODES = (534, 535)
# How Exchange, Gmail and Postfix word "this login may not use this sender".
_SEND_AS_MARKERS = (
    "5.7.60",
    "send as",
    "sendas",
    "permissions to send",
    "permission to send",
    "not owned by",
    "not allowed to send",
)
_QUEUE_ID_PATTERNS = (
    re.compile(r"queued as\s+<?([^\s<>]+?)>?[.,;)]*(?:\s|$)", re.IGNORECASE),
    re.compile(r"\bid=<?([^\s<>,;]+?)>?[.,;)]*(?:\s|$)", re.IGNORECASE),
    # Exchange gives only "<id> Queued mail for delivery": any <...> is its id.
    re.compile(r"<([^\s<>]+)>"),
)


def find(exc, kind):
    """Return the first exception of ``kind`` in the chain of ``exc``, or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def decode_reply(reply):
    """Return an SMTP reply text as ``str``, whatever smtplib gave."""
    if isinstance(reply, bytes):
        return reply.decode("utf-8", "replace")
    return str(reply or "")


def reply_of(exc):
    """Return the ``(code, text)`` of the server reply carried by ``exc``."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        code, text = next(iter(exc.recipients.values()))
        return code, decode_reply(text)
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code, decode_reply(exc.smtp_error)
    return None, ""


def _has_status(text, code):
    # An enhanced status code (RFC 3463) as a whole word: 5.7.8 is not 5.7.80.
    return re.search(rf"(?<![\d.]){re.escape(code)}(?![\d])", text) is not None


def _diagnose_provider_reply(step, code, text, settings):
    # Microsoft 365 and Google name the cause of a refusal with an enhanced
    # status code, where the generic hints would only say "login refused".
    oauth = bool(settings and settings.oauth_token)
    if _has_status(text, "5.7.139"):
        if not oauth and "basic authentication is disabled" in text.lower():
            return "microsoft_basic_auth_disabled"
        return "microsoft_smtp_auth_disabled"
    if _has_status(text, "5.7.57"):
        return "microsoft_client_not_authenticated"
    if _has_status(text, "5.7.60") or "sendasdenied" in text.lower():
        return "microsoft_send_as_denied"
    if step != Step.AUTH or code not in _LOGIN_REFUSED_CODES:
        return None
    if oauth:
        return "oauth_token_refused"
    if _has_status(text, "5.7.9"):
        return "google_app_password_required"
    if _has_status(text, "5.7.8") and "username and password" in text.lower():
        return "google_login_refused"
    return None


def diagnose_reply(
    step: Step | str, code: int, text: str, settings: SmtpSettings | None = None
) -> str:
    """Return the hint key for a refusing server reply at ``step``."""
    step = Step(step)
    if provider_hint := _diagnose_provider_reply(step, code, text, settings):
        return provider_hint
    encryption = settings.encryption if settings else None
    lowered = text.lower()
    if step == Step.GREETING:
        # -1: not an SMTP line at all, as a TLS server's first bytes look.
        if code == -1 and encryption != "ssl":
            return "plain_on_ssl_port"
        return "greeting_refused"
    # 538 (RFC 4954) and Postfix's "530 Must issue a STARTTLS command first".
    if code == 538 or (code == 530 and "starttls" in lowered):
        return "starttls_required"
    if step == Step.TLS:
        return "tls_failed"
    if step == Step.AUTH:
        if code in _LOGIN_REFUSED_CODES:
            return "login_refused"
        if code == 504:
            return "auth_not_offered"
        return "server_error"
    if code == 530 and step in (Step.SENDER, Step.RECIPIENT, Step.DATA):
        return "auth_required"
    if step == Step.SENDER and 500 <= code < 600:
        return "sender_not_allowed"
    if step == Step.RECIPIENT:
        # 554 5.7.1 ("not authorized") at RCPT is how Postfix refuses to relay.
        if "relay" in lowered or (code == 554 and "5.7.1" in text):
            return "relay_denied"
        if 500 <= code < 600:
            return "recipient_rejected"
    if step == Step.DATA and code >= 400:
        if any(marker in lowered for marker in _SEND_AS_MARKERS):
            return "sender_not_allowed"
        return "message_rejected"
    return "server_error"


def _diagnose_tls(exc, step, encryption):
    if find(exc, CertificateChangedError) is not None:
        return "certificate_changed"
    cert_error = find(exc, ssl.SSLCertVerificationError)
    if cert_error is not None:
        if cert_error.verify_code in _NAME_MISMATCH_CODES:
            return "certificate_hostname_mismatch"
        return "certificate_untrusted"
    ssl_error = find(exc, ssl.SSLError)
    if ssl_error is None or step != Step.TLS:
        return None
    if encryption == "ssl" and getattr(ssl_error, "reason", None) in _NOT_TLS_REASONS:
        return "ssl_on_plain_port"
    return "tls_failed"


def diagnose_exception(
    exc: BaseException,
    step: Step | str,
    settings: SmtpSettings | None = None,
    *,
    timed_out: bool = False,
) -> tuple[str, int | None, str]:
    """Map a failure at ``step`` to ``(hint_key, code, reply_text)``.

    ``timed_out``: the exchange's deadline had passed, whatever ``exc`` is.
    """
    step = Step(step)
    code, text = reply_of(exc)
    encryption = settings.encryption if settings else None
    port = settings.port if settings else None
    # Silence from port 465 is a plain client waiting for a TLS server's greeting.
    plain_on_tls_port = step == Step.GREETING and port == 465 and encryption != "ssl"
    if timed_out or find(exc, TimeoutError) is not None:
        return ("plain_on_ssl_port" if plain_on_tls_port else "timeout"), code, text
    if tls_hint := _diagnose_tls(exc, step, encryption):
        return tls_hint, code, text
    if find(exc, socket.gaierror) is not None:
        return "dns_failed", code, text
    if find(exc, ConnectionRefusedError) is not None:
        return "connection_refused", code, text
    if isinstance(exc, CredentialsEncodingError):
        return "credentials_not_encodable", code, text
    # smtplib says "No suitable authentication method found." with a bare
    # SMTPException when the server offers only mechanisms it cannot use.
    bare_auth_error = step == Step.AUTH and type(exc) is smtplib.SMTPException
    if isinstance(exc, smtplib.SMTPNotSupportedError) or bare_auth_error:
        hints = {Step.TLS: "starttls_not_offered", Step.AUTH: "auth_not_offered"}
        return hints.get(step, "server_error"), code, text
    if code is not None:
        return diagnose_reply(step, code, text, settings), code, text
    if step == Step.CONNECT and isinstance(exc, OSError):
        return "connection_refused", code, text
    if isinstance(exc, (smtplib.SMTPServerDisconnected, OSError)):
        hint = "plain_on_ssl_port" if plain_on_tls_port else "disconnected"
        return hint, code, text
    return "server_error", code, text


def parse_queue_id(reply: str | bytes) -> str | None:
    """The queue id ("queued as X", "id=X", "<X>") in a reply to DATA, or None."""
    text = decode_reply(reply)
    matches = (pattern.search(text) for pattern in _QUEUE_ID_PATTERNS)
    return next((match.group(1) for match in matches if match), None)


def describe_exception(exc):
    """Return a short technical description of ``exc``: class and message."""
    name = type(exc).__name__
    if isinstance(exc, UnicodeError):
        # Its message quotes the character and its position: maybe a password's.
        return f"{name}: text not valid in {getattr(exc, 'encoding', '?')}"
    code, text = reply_of(exc)
    if code is not None:
        return f"{name}: {code} {text}".strip()
    message = str(exc).strip()
    return f"{name}: {message}" if message else name
