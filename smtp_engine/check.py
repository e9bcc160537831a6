"""The test message: from the account to itself, saying how it was sent."""

import email.errors
import email.policy
import html
import smtplib
import time
from collections.abc import Callable
from datetime import datetime
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid

from .connection import (
    NETWORK_ERRORS,
    Deadline,
    SmtpSession,
    credentials_failure,
    establish,
    failed_before_connecting,
    failed_during_exchange,
)
from .diagnosis import decode_reply, describe_exception, parse_queue_id
from .result import SmtpOutcome, Step
from .settings import SmtpSettings
from .texts import (
    SECURITY_LABELS,
    TEST_CLOSING,
    TEST_INTRO,
    TEST_LINES,
    TEST_NO_LOGIN,
    TEST_SUBJECT,
    render,
    untranslated,
)


def _one_line(text):
    return " ".join(str(text or "").split())


def parse_address(address):
    """Return ``address`` as an ``Address``, or None if it is not usable.

    Only plain ASCII local@domain: what every SMTP server understands.
    """
    address = (address or "").strip()
    if not address.isascii() or address.count("@") != 1 or len(address.split()) != 1:
        return None
    try:
        parsed = Address(addr_spec=address)
    except (ValueError, IndexError, email.errors.MessageError):
        return None
    return parsed if parsed.username and parsed.domain else None


def _set_text_header(message, name, value):
    # Before Python 3.13, folding a long header into encoded words drops the
    # space at each fold ("από τον" arrives as "απότον"); ``Header`` keeps
    # every space inside the encoded words.
    if value.isascii():
        message[name] = value
    else:
        message.set_raw(name, Header(value, "utf-8", header_name=name).encode())


def compose_test_message(
    settings: SmtpSettings,
    account_name: str,
    *,
    translate: Callable[[str], str] = untranslated,
    now: datetime | None = None,
    message_id_domain: str | None = None,
    date_text: str | None = None,
) -> EmailMessage:
    """Return the test message, from the sender to itself, saying how it was sent.

    ``now`` fixes the date, ``date_text`` is how the reader's language
    writes it (default: ISO 8601). Raises ``ValueError`` for an invalid sender.
    """
    address = parse_address(settings.sender_email)
    if address is None:
        raise ValueError(f"invalid sender e-mail address: {settings.sender_email!r}")
    # From the parts: the addr_spec of a quoted local part ("a..b") would
    # not parse again.
    sender = Address(_one_line(settings.sender_name), address.username, address.domain)
    now = now or datetime.now()
    now = now if now.tzinfo else now.astimezone()
    credentials = settings.credentials()
    params = {
        "account": _one_line(account_name),
        "host": settings.host,
        "port": settings.port,
        "security": translate(SECURITY_LABELS[settings.encryption]),
        "login": credentials[0] if credentials else translate(TEST_NO_LOGIN),
        "date": date_text or now.strftime("%Y-%m-%d %H:%M:%S %z"),
    }
    intro = render(TEST_INTRO, translate, params)
    lines = [render(line, translate, params) for line in TEST_LINES]
    closing = render(TEST_CLOSING, translate, params)

    message = EmailMessage()
    message["From"] = sender
    message["To"] = sender
    message["Date"] = now
    message["Message-ID"] = make_msgid(domain=message_id_domain or address.domain)
    _set_text_header(message, "Subject", render(TEST_SUBJECT, translate, params))
    message["X-Email-Account-Test"] = "1"
    message["Auto-Submitted"] = "auto-generated"
    # Exchange and Outlook ignore Auto-Submitted: without this, an out-of-
    # office rule of the mailbox would answer the test message to itself.
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content("\n".join([intro, "", *lines, "", closing]) + "\n")
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    message.add_alternative(
        "<!DOCTYPE html>\n<html><body>"
        f"<p>{html.escape(intro)}</p><ul>{items}</ul><p>{html.escape(closing)}</p>"
        "</body></html>\n",
        subtype="html",
    )
    return message


def _transfer(session, address, data):
    """Send ``data`` from ``address`` to itself, step by step, and say goodbye."""
    options = [f"SIZE={len(data)}"] if session.has_extn("size") else []
    session.step = Step.SENDER
    code, reply = session.mail(address, options)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, reply, address)
    session.step = Step.RECIPIENT
    code, reply = session.rcpt(address)
    if code not in (250, 251):
        raise smtplib.SMTPRecipientsRefused({address: (code, reply)})
    session.step = Step.DATA
    code, reply = session.data(data)
    if code != 250:
        raise smtplib.SMTPDataError(code, reply)
    session.step = Step.QUIT
    # A failure from here on no longer matters to the message.
    try:
        session.quit()
    except NETWORK_ERRORS as exc:
        session.transcript.event(
            "QUIT failed after the message was accepted: "
            + session.transcript.withhold(describe_exception(exc))
        )
    session.step = Step.DONE
    return code, reply


def send_test_message(
    settings: SmtpSettings,
    account_name: str,
    *,
    translate: Callable[[str], str] = untranslated,
    now: datetime | None = None,
    date_text: str | None = None,
) -> SmtpOutcome:
    """Send the test message of ``settings`` to its own sender address.

    ``translate``, ``now`` and ``date_text`` are ``compose_test_message``'s.
    Failures of the server, the network or TLS are in the outcome, never
    raised; ``ValueError`` means invalid settings.
    """
    started = time.monotonic()
    recipient = (settings.sender_email or "").strip()
    refused = credentials_failure(settings, started, recipient=recipient)
    if refused is not None:
        return refused
    if parse_address(recipient) is None:
        return failed_before_connecting(
            Step.SENDER,
            "sender_invalid",
            f"invalid sender e-mail address: {recipient!r}",
            started,
            recipient=recipient,
        )
    message = compose_test_message(
        settings, account_name, translate=translate, now=now, date_text=date_text
    )
    message_id = message["Message-ID"]
    data = message.as_bytes(policy=email.policy.SMTP)
    session = SmtpSession(settings, deadline=Deadline(settings.timeout))
    try:
        establish(session)
        code, reply = _transfer(session, recipient, data)
    except NETWORK_ERRORS as exc:
        return failed_during_exchange(
            session, exc, started, message_id=message_id, recipient=recipient
        )
    finally:
        session.close()
    reply = session.transcript.withhold(decode_reply(reply))
    return SmtpOutcome(
        ok=True,
        step=Step.DONE,
        code=code,
        reply=reply,
        queue_id=parse_queue_id(reply),
        message_id=message_id,
        recipient=recipient,
        elapsed=time.monotonic() - started,
        transcript=session.transcript.text(),
    )
