"""SMTP engine of the e-mail accounts, without any dependency on Odoo.

It composes the test message of an account, sends it with exactly the
account's settings, and explains any failure: at which step, with what
server reply, and a hint the user can act on. ``open_connection`` gives the
same connection, set up the same way, for real sending.
"""

from .check import send_test_message
from .connection import open_connection
from .diagnosis import diagnose_exception, diagnose_reply, parse_queue_id
from .message import compose_test_message
from .result import CheckResult, SmtpEngineError, Step
from .settings import ENCRYPTIONS, SmtpSettings
from .texts import HINTS, MESSAGE_TEXTS, SECURITY_LABELS, STEP_LABELS

__all__ = [
    "ENCRYPTIONS",
    "HINTS",
    "MESSAGE_TEXTS",
    "SECURITY_LABELS",
    "STEP_LABELS",
    "CheckResult",
    "SmtpEngineError",
    "SmtpSettings",
    "Step",
    "compose_test_message",
    "diagnose_exception",
    "diagnose_reply",
    "open_connection",
    "parse_queue_id",
    "send_test_message",
]
