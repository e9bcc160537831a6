"""Find the test message in the account's own mailbox over IMAP."""

import email
import imaplib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from .connection import (
    Deadline,
    Watchdog,
    connect_any,
    normalize_host,
    record_tls,
    resolve,
    tls_context,
)
from .diagnosis import describe_exception, diagnose_exception
from .result import Explained, Step
from .settings import check_server
from .texts import _lt
from .transcript import MASK, Transcript, secret_forms

DEFAULT_PORTS = {"ssl": 993, "starttls": 143, "none": 143}
# Searching starts fast (on a good day the message is there at once) and
# backs off so that a long wait costs the server a handful of searches.
_FIRST_POLL = 0.1
_MAX_POLL = 2.0
# Most seconds added to the wait for reading and deleting a message found at
# its end, and logging out.
_CLEANUP_TIME = 5.0
_JUNK_NAMES = ("junk", "spam", "junk e-mail", "junk email", "bulk mail")
_LIST_LINE = re.compile(
    rb'^\((?P<flags>[^)]*)\)\s+(?P<sep>NIL|"[^"]*")\s+(?P<name>.+)$'
)
_MESSAGE_ID = re.compile(r"^<[\x21-\x7e]+>$")
# One token of an Authentication-Results value: a comment (nested once at
# most, left open at the end), a "key=value" (spaces around "=" allowed),
# the ";" that ends a resinfo, or any other word.
_RESULTS_TOKEN = re.compile(
    r"\((?P<comment>(?:[^()]|\([^()]*\))*)\)?"
    r'|(?P<key>[^\s()=;"]+)\s*=\s*(?P<value>"[^"]*"|[^\s();"]*)'
    r"|(?P<end>;)"
    r'|"[^"]*"|[^\s();"]+'
)

ROUNDTRIP_STEP_LABELS = {
    "imap_connect": _lt("Connecting to the incoming mail server (IMAP)"),
    "imap_tls": _lt("Setting up the encrypted connection to the incoming mail server"),
    "imap_login": _lt("Logging in to the mailbox (IMAP)"),
    "imap_search": _lt("Looking for the test message in the mailbox"),
    "done": _lt("Done"),
}

ROUNDTRIP_HINTS = {
    "imap_not_configured": _lt(
        "The mailbox cannot be opened: enter the account's user name and "
        "password, which the incoming mail server (IMAP) uses too."
    ),
    "imap_dns_failed": _lt(
        "The incoming mail server's name could not be found. Check the IMAP "
        "server name."
    ),
    "imap_connection_refused": _lt(
        "Nothing accepted the connection on the IMAP server and port. Check "
        "them (usually port 993 with SSL/TLS)."
    ),
    "imap_timeout": _lt(
        "The incoming mail server did not answer in time. Check the IMAP "
        "server name, port and security."
    ),
    "imap_certificate_untrusted": _lt(
        "The incoming mail server's certificate is not trusted (it may be "
        "self-signed or expired). Use the IMAP server name the provider "
        "documents."
    ),
    "imap_certificate_hostname_mismatch": _lt(
        "The incoming mail server's certificate was issued for another name. "
        "Enter the IMAP server name exactly as the provider documents it."
    ),
    "imap_certificate_changed": _lt(
        "The incoming mail server's certificate is not the pinned one; the "
        "connection may be intercepted."
    ),
    "imap_tls_failed": _lt(
        "The encrypted connection to the incoming mail server could not be set "
        "up. Check the IMAP port and security (usually 993 with SSL/TLS)."
    ),
    "imap_starttls_not_offered": _lt(
        "The incoming mail server does not offer STARTTLS on this port, so the "
        "password was not sent. Choose SSL/TLS (usually port 993)."
    ),
    "imap_encryption_required": _lt(
        "The incoming mail server accepts a login only over an encrypted "
        "connection, so the password was not sent. Choose SSL/TLS (usually "
        "port 993) or STARTTLS (usually port 143)."
    ),
    "imap_login_refused": _lt(
        "The incoming mail server refused the user name or password. Check "
        "them; some providers require an app password or that IMAP is enabled "
        "for the mailbox."
    ),
    "imap_error": _lt(
        "The incoming mail server reported an error. Read the IMAP transcript "
        "for details."
    ),
}


# What a verdict of the receiving server means, for the verdicts that need
# the user to act. Keys: (method, result) of ``Authentication-Results``.
VERDICT_HINTS = {
    ("spf", "fail"): _lt(
        "SPF failed: your domain's SPF record does not allow the server that "
        "handed the message over. Add your provider to the record."
    ),
    ("spf", "softfail"): _lt(
        "SPF did not pass: your domain's SPF record does not clearly allow the "
        "server that handed the message over. Add your provider to the record."
    ),
    ("spf", "none"): _lt(
        "SPF: your domain publishes no SPF record, so receivers cannot tell "
        "which servers may send its mail."
    ),
    ("dkim", "none"): _lt(
        "DKIM: the message carries no signature. Ask your provider to sign "
        "your domain's mail (DKIM) and publish the key it gives you."
    ),
    ("dkim", "fail"): _lt(
        "DKIM failed: the signature does not match the message or the key "
        "your domain publishes. Check the DKIM key in your domain's DNS."
    ),
    ("dmarc", "fail"): _lt(
        "DMARC failed: neither SPF nor DKIM passed for the domain of the From "
        "address. Receivers that follow your policy set such mail aside or "
        "refuse it."
    ),
    ("dmarc", "none"): _lt(
        "DMARC: your domain publishes no DMARC policy: Gmail and Yahoo refuse "
        "bulk mail without one."
    ),
}
NO_VERDICTS = _lt(
    "The received copy carries no Authentication-Results header: the "
    "receiving server did not say whether it trusts the message."
)


class RoundTripStep(str, Enum):
    CONNECT = "imap_connect"
    TLS = "imap_tls"
    LOGIN = "imap_login"
    SEARCH = "imap_search"
    DONE = "done"

    def __str__(self):
        return self.value


@dataclass(frozen=True)
class ImapSettings:
    """How to open the account's mailbox; the certificate as in ``SmtpSettings``."""

    host: str
    port: int = 993
    encryption: str = "ssl"
    username: str = ""
    password: str = field(default="", repr=False)
    pinned_certificate: str = ""
    cafile: str | None = None

    def __post_init__(self):
        check_server(self)


@dataclass(frozen=True)
class AuthVerdict:
    """One method's result in an ``Authentication-Results`` header."""

    result: str
    reason: str = ""


@dataclass
class RoundTripResult(Explained):
    """Where the test message landed, or where looking for it failed.

    ``step`` is the failing step, or ``DONE`` when the search ran to its end
    (found or not); ``arrival`` counts from the submission; ``verdicts`` are
    those of the topmost ``Authentication-Results`` header, by method.
    """

    step: RoundTripStep
    wait: float
    folder: str | None = None
    arrival: float | None = None
    elapsed: float = 0.0
    hops: tuple[str, ...] = ()
    verdicts: dict = field(default_factory=dict)
    deleted: bool = False
    searched: bool = False
    hint: str | None = None
    error: str = ""
    transcript: str = ""
    STEP_LABELS = ROUNDTRIP_STEP_LABELS
    HINTS = ROUNDTRIP_HINTS

    @property
    def ok(self):
        return self.step == RoundTripStep.DONE

    @property
    def state(self):
        """ "inbox", "junk", "not_found" or "failed"."""
        return (self.folder or "not_found") if self.ok else "failed"


class _Refused(Exception):
    """A refused login, or one that would expose the password: ``hint`` says which."""

    def __init__(self, hint, text):
        super().__init__(text)
        self.hint = hint


class ImapSession(imaplib.IMAP4):
    """An ``imaplib.IMAP4`` that connects as the SMTP session does, waits at
    most for what is left of the deadline and keeps a masked transcript.

    imaplib's constructor connects at once: ``open_mailbox`` runs it, so
    that the step reached is known when connecting fails.
    """

    sock = file = None

    def __init__(self, settings, deadline, transcript):  # connects later
        self.settings = settings
        self.deadline = deadline
        self.transcript = transcript
        self.step = RoundTripStep.CONNECT
        self.watchdog = Watchdog("imap-roundtrip-watchdog")

    def open(self, host="", port=imaplib.IMAP4_PORT, timeout=None):
        self.host, self.port = normalize_host(host), port
        addresses = resolve(self.host, port, self.deadline)
        self.sock = connect_any(
            addresses, self.deadline, self.transcript, self.watchdog
        )
        if self.settings.encryption == "ssl":
            self.step = RoundTripStep.TLS
            context = tls_context(self.settings)
            self.sock = context.wrap_socket(self.sock, server_hostname=self.host)
            self._secured()
        self.file = self.sock.makefile("rb")

    def _secured(self):
        record_tls(self.transcript, self.sock, self.settings.pinned_certificate)

    def disconnect(self):
        for stream in (self.file, self.sock):
            if stream is not None:
                stream.close()
        self.watchdog.disarm()

    def read(self, size):  # a literal: message data, not recorded
        self.sock.settimeout(self.deadline.socket_timeout())
        data = super().read(size)
        self.transcript.event(f"<{len(data)} bytes of message data>")
        return data

    def readline(self):
        self.sock.settimeout(self.deadline.socket_timeout())
        line = super().readline()
        self.transcript.server(line.decode("utf-8", "replace").rstrip("\r\n"))
        return line

    def send(self, data):
        self.sock.settimeout(self.deadline.socket_timeout())
        line = data.decode("utf-8", "replace").rstrip("\r\n")
        tag, _sep, rest = line.partition(" ")
        if rest.upper().startswith("LOGIN "):
            line = f"{tag} LOGIN {MASK}"
        self.transcript.client(line)
        return super().send(data)

    def open_mailbox(self):
        settings = self.settings
        imaplib.IMAP4.__init__(self, settings.host, settings.port)
        if settings.encryption == "starttls":
            self.step = RoundTripStep.TLS
            if "STARTTLS" not in self.capabilities:
                raise _Refused("imap_starttls_not_offered", "STARTTLS not offered")
            self.starttls(ssl_context=tls_context(settings))
            self._secured()
        self.step = RoundTripStep.LOGIN
        if "LOGINDISABLED" in self.capabilities:
            raise _Refused("imap_encryption_required", "LOGINDISABLED")
        try:
            self.login(settings.username, settings.password)
        except self.abort:
            raise
        except self.error as exc:
            text = self.transcript.withhold(str(exc))
            raise _Refused("imap_login_refused", text) from None
        self.step = RoundTripStep.SEARCH
        # Servers announce more after the login (UIDPLUS, for one).
        _typ, data = self.capability()
        if data[-1]:
            self.capabilities = tuple(
                data[-1].decode("ascii", "replace").upper().split()
            )

    def junk_folder(self):
        """Return the junk folder: flagged ``\\Junk`` (RFC 6154), else by name."""
        by_name = None
        for line in self.list()[1]:
            match = _LIST_LINE.match(line) if isinstance(line, bytes) else None
            if not match:
                continue
            name = match["name"].decode("utf-8", "replace")
            if b"\\junk" in match["flags"].lower().split():
                return name
            separator = match["sep"].strip(b'"').decode() or "/"
            leaf = name.strip('"').rpartition(separator)[2]
            if by_name is None and leaf.lower() in _JUNK_NAMES:
                by_name = name
        return by_name

    def search_message_id(self, folder, message_id):
        typ, _data = self.select(folder)
        if typ != "OK":
            return None
        _typ, data = self.uid("SEARCH", "HEADER", "Message-ID", f'"{message_id}"')
        uids = (data[0] or b"").split()
        return uids[0].decode() if uids else None

    def fetch_header(self, uid):
        _typ, data = self.uid("FETCH", uid, "(BODY.PEEK[HEADER])")
        return next((part[1] for part in data or () if isinstance(part, tuple)), b"")

    def delete(self, uid):
        self.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)")
        # Without UIDPLUS an EXPUNGE would also remove whatever else the user
        # marked deleted: the message is then left marked, not expunged.
        if "UIDPLUS" in self.capabilities:
            typ, _data = self.uid("EXPUNGE", uid)
            return typ == "OK"
        return False


def parse_authentication_results(value):
    """Return the verdicts of one ``Authentication-Results`` value (RFC 8601).

    The reason is the ``reason`` property, or else the comment that follows
    the result. Only the first verdict of each method is kept.
    """
    resinfos = [[]]
    for token in _RESULTS_TOKEN.finditer(value or ""):
        if token["end"]:
            resinfos.append([])
        else:
            resinfos[-1].append(token)
    verdicts = {}
    for first, *rest in filter(None, resinfos[1:]):
        method = (first["key"] or "").split("/")[0].lower()
        result = (first["value"] or "").lower()
        if not (method and result) or method in verdicts:
            continue
        properties = {t["key"].lower(): t["value"].strip('"') for t in rest if t["key"]}
        comments = (" ".join(t["comment"].split()) for t in rest if t["comment"])
        reason = properties.get("reason") or next(comments, "")
        verdicts[method] = AuthVerdict(result, reason)
    return verdicts


def describe_hops(received_headers):
    """Return the ``Received`` headers as short hops, oldest first."""
    hops = []
    for header in reversed(received_headers):
        text = " ".join(str(header).split())
        route, _sep, date = text.rpartition(";")
        found = {
            word: re.search(rf"\b{word}\s+(\S+)", route or text, re.IGNORECASE)
            for word in ("from", "by", "with")
        }
        pieces = [f"{word} {match[1]}" for word, match in found.items() if match]
        hop = " ".join(pieces) or (route or text)
        hops.append(f"{hop}; {date.strip()}" if route and date.strip() else hop)
    return tuple(hops)


def _classify(exc, step):
    if isinstance(exc, _Refused):
        return exc.hint
    # Only connecting and TLS have hints of their own in SMTP's diagnosis.
    as_smtp = {RoundTripStep.CONNECT: Step.CONNECT, RoundTripStep.TLS: Step.TLS}
    hint = "imap_" + diagnose_exception(exc, as_smtp.get(step, Step.DONE))[0]
    return hint if hint in ROUNDTRIP_HINTS else "imap_error"


def find_message(
    settings: ImapSettings,
    message_id: str,
    *,
    wait: float,
    submitted: float | None = None,
    delete: bool = True,
    progress: Callable[[float, float, str], None] | None = None,
) -> RoundTripResult:
    """Look for ``message_id`` in the mailbox of ``settings`` for ``wait`` seconds.

    ``submitted`` is the ``time.monotonic()`` of the submission (default:
    now). ``progress`` is called after each search with the seconds waited,
    ``wait`` and the folder searched. Server, network and TLS problems never
    raise.
    """
    started = time.monotonic()
    submitted = started if submitted is None else submitted
    transcript = Transcript(
        secret_forms((settings.username, settings.password), (settings.password,))
    )
    result = RoundTripResult(step=RoundTripStep.CONNECT, wait=wait)
    if not (settings.username and settings.password):
        result.hint = "imap_not_configured"
        result.step = RoundTripStep.LOGIN
        transcript.event("Not connecting: no user name or password")
        result.transcript = transcript.text()
        return result
    if not _MESSAGE_ID.match(message_id or ""):
        raise ValueError(f"not a Message-ID: {message_id!r}")
    deadline = Deadline(wait + min(_CLEANUP_TIME, wait / 4))
    search_end = started + wait
    transcript.event(
        f"Connecting to {settings.host} port {settings.port}, "
        f"security {settings.encryption}"
    )
    session = ImapSession(settings, deadline, transcript)
    try:
        session.open_mailbox()
        _search(session, result, message_id, search_end, submitted, delete, progress)
        session.step = RoundTripStep.DONE
        session.logout()
    except (OSError, EOFError, ValueError, imaplib.IMAP4.error, _Refused) as exc:
        if (
            session.step == RoundTripStep.DONE
            or result.folder
            or (result.searched and time.monotonic() >= search_end)
        ):
            # Found, or searched until the time ran out: what failed after
            # that (a deletion, the logout) does not change the answer.
            session.step = RoundTripStep.DONE
            transcript.event(f"After the search: {describe_exception(exc)}")
        else:
            if isinstance(exc, OSError | imaplib.IMAP4.abort) and deadline.expired():
                exc = TimeoutError(f"no answer within {wait:g} seconds")
            result.hint = _classify(exc, session.step)
            result.error = transcript.withhold(describe_exception(exc))
            transcript.event(f"Failed at step {session.step.value}: {result.error}")
    finally:
        session.disconnect()
    result.step = session.step
    result.elapsed = time.monotonic() - started
    result.transcript = transcript.text()
    return result


def _search(session, result, message_id, search_end, submitted, delete, progress):
    junk = session.junk_folder()
    session.transcript.event(f"Junk folder: {junk or 'none'}")
    folders = [("inbox", "INBOX")] + ([("junk", junk)] if junk else [])
    pause = _FIRST_POLL
    while True:
        round_started = time.monotonic()
        for folder, name in folders:
            uid = session.search_message_id(name, message_id)
            if progress is not None:
                progress(time.monotonic() - submitted, result.wait, folder)
            if uid is not None:
                result.arrival = time.monotonic() - submitted
                result.folder = folder
                _read_header(result, session.fetch_header(uid))
                result.deleted = delete and session.delete(uid)
                return
        result.searched = True
        # Another round only if it can end before the search does; the last
        # one starts so as to end when the search does.
        left = search_end - time.monotonic() - (time.monotonic() - round_started)
        if left <= 0:
            session.transcript.event(f"Not found within {result.wait:g} seconds")
            return
        time.sleep(min(pause, left))
        pause = min(pause * 1.5, _MAX_POLL)


def _read_header(result, header):
    message = email.message_from_bytes(header)
    result.hops = describe_hops(message.get_all("Received") or [])
    # The topmost header is the one the receiving server added; any below
    # it came with the message and proves nothing.
    topmost = " ".join(str(message.get("Authentication-Results", "")).split())
    result.verdicts = parse_authentication_results(topmost)
