"""SMTP engine of the e-mail accounts, without any dependency on Odoo."""

from .check import compose_test_message, send_test_message
from .connection import open_connection
from .diagnosis import diagnose_exception, diagnose_reply, parse_queue_id
from .result import SmtpEngineError, SmtpOutcome, Step
from .settings import ENCRYPTIONS, SmtpSettings
from .texts import HINTS, MESSAGE_TEXTS, SECURITY_LABELS, STEP_LABELS
