"""Send the test message of an account and diagnose what happened."""

import email.policy
import smtplib
import time
from collections.abc import Callable
from datetime import datetime

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
from .message import compose_test_message, parse_address
from .result import SmtpOutcome, Step
from .settings import SmtpSettings
from .texts import untranslated


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
