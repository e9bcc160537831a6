"""The outcome of an SMTP exchange: the step reached and the diagnosis."""

import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from .certificate import CertificateDetails
from .texts import HINTS, STEP_LABELS, untranslated


class Step(str, Enum):
    """The steps of an SMTP exchange, in the order they happen."""

    RESOLVE = "resolve"
    CONNECT = "connect"
    GREETING = "greeting"
    EHLO = "ehlo"
    TLS = "tls"
    AUTH = "auth"
    SENDER = "sender"
    RECIPIENT = "recipient"
    DATA = "data"
    QUIT = "quit"
    DONE = "done"

    def __str__(self):
        return self.value


class Explained:
    """The translated step and advice of a result, from its class's tables."""

    STEP_LABELS = STEP_LABELS
    HINTS = HINTS

    def hint_text(self, translate: Callable[[str], str] = untranslated) -> str:
        """Return the translated advice for the failure, or "" if none."""
        return translate(self.HINTS[self.hint]) if self.hint else ""

    def step_label(self, translate: Callable[[str], str] = untranslated) -> str:
        """Return the translated label of the step reached."""
        return translate(self.STEP_LABELS[str(self.step)])


@dataclass
class SmtpOutcome(Explained):
    """How an SMTP exchange ended: the test message's or real sending's.

    ``step`` is the failed one or ``DONE``; ``code`` and ``reply`` are the
    failing reply, or on success the reply to the data; ``hint`` is a key of
    ``HINTS``; ``error`` has no secrets; ``certificate`` is the server's,
    when it was refused.
    """

    ok: bool
    step: Step
    code: int | None = None
    reply: str = ""
    hint: str | None = None
    error: str = ""
    queue_id: str | None = None
    message_id: str = ""
    recipient: str = ""
    elapsed: float = 0.0
    transcript: str = ""
    certificate: CertificateDetails | None = None


class CredentialsEncodingError(smtplib.SMTPException):
    """The login or password holds a character that cannot be sent."""


class SmtpEngineError(Exception):
    """``open_connection`` failed; ``result`` is the ``SmtpOutcome`` saying why."""

    def __init__(self, result: SmtpOutcome):
        self.result = result
        super().__init__(
            f"SMTP {result.step.value} failed: {result.error or result.reply}"
        )
