"""The test message: from the account, to the account, saying how it was sent."""

import email.errors
import html
from collections.abc import Callable
from datetime import datetime
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid

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
    sender = Address(_one_line(settings.sender_name), addr_spec=address.addr_spec)
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
