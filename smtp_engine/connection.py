"""Connect, secure and log in to an SMTP server under one deadline."""

import base64
import binascii
import contextlib
import dataclasses
import functools
import hmac
import os
import smtplib
import socket
import ssl
import threading
import time

from .certificate import CertificateChangedError, CertificateDetails, fingerprint
from .diagnosis import CERTIFICATE_HINTS, describe_exception, diagnose_exception, find
from .result import CredentialsEncodingError, SmtpEngineError, SmtpOutcome, Step
from .settings import SmtpSettings
from .transcript import WITHHELD, Transcript, secret_forms
from .xoauth2 import login_xoauth2

# The private names of smtplib that SmtpSession relies on, the same in
# CPython 3.10 to 3.13 (a test checks them on the running Python):
# _get_socket, through which connect() opens the connection; _host, the TLS
# server name of starttls(), which only __init__ sets; _auth_challenge_count,
# read by auth_login().
SMTPLIB_PRIVATE_NAMES = ("_get_socket", "_host", "_auth_challenge_count")
# No sane server sends more lines in one reply; a longer one is an attack or
# a mistake, and must not keep a sending process busy.
_MAX_REPLY_LINES = 500
_MAX_REPLY_BYTES = 64 * 1024
# The watchdog fires a little after the deadline: normally the socket
# time-out, set to the remaining time, has already ended the wait.
_WATCHDOG_GRACE = 0.1
_FQDN_WAIT = 2.0  # for this machine's own name, given in EHLO
# As smtplib: a server that keeps challenging during AUTH is broken.
_MAX_CHALLENGES = 5
_fqdn_cache = []

# The failures that are the server's or the network's, never the caller's.
NETWORK_ERRORS = (smtplib.SMTPException, OSError, UnicodeError)


def _utf8(text):
    # A lone surrogate stands for a byte that was not UTF-8 where the text
    # came from (``os.environ`` decodes so) and goes back as that byte.
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        error = CredentialsEncodingError("the login or password cannot be encoded")
    # Raised out here, not chained: the encoder's error quotes the text.
    raise error


class Deadline:
    """A point in time after which an exchange must give up."""

    def __init__(self, seconds):
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self):
        """Return the seconds left, negative once past."""
        return self._end - time.monotonic()

    def expired(self):
        return self.remaining() <= 0

    def socket_timeout(self):
        """Return the remaining time, or raise ``TimeoutError`` if none is left."""
        remaining = self.remaining()
        if remaining <= 0:
            raise TimeoutError(f"no answer within {self.seconds:g} seconds")
        return remaining


class Watchdog:
    """Shuts a connection down a little after its deadline, or when stopped.

    It ends what the socket time-out cannot: a server trickling bytes one by
    one. It holds a duplicate descriptor, valid whatever happens to the
    socket object (TLS wrapping detaches it), whose shutdown ends any
    connect, read or write in progress.
    """

    def __init__(self, name):
        self.name = name
        self.fired = False
        self.stopped = False
        self._timer = None
        self._socket = None
        self._lock = threading.Lock()

    def arm(self, sock, deadline):
        with self._lock:
            if self.stopped:
                raise TimeoutError("the connection was stopped")
            self._socket = sock.dup()
        self._timer = threading.Timer(
            max(deadline.remaining(), 0) + _WATCHDOG_GRACE, self._fire
        )
        self._timer.name = self.name
        self._timer.daemon = True
        self._timer.start()

    def stop(self):
        """Shut the connection down now, and refuse to watch another."""
        with self._lock:
            self.stopped = True
        self._fire()

    def _fire(self):
        with self._lock:
            if self._socket is None:
                return
            self.fired = True
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)

    def disarm(self):
        with self._lock:
            timer, self._timer = self._timer, None
            watch_socket, self._socket = self._socket, None
        if timer is not None:
            timer.cancel()
            if timer is not threading.current_thread():
                timer.join()
        if watch_socket is not None:
            watch_socket.close()


def run_bounded(func, seconds, *args):
    """Run ``func(*args)``, which takes no time-out, waiting at most ``seconds``.

    A worker that outlives the wait is abandoned (a daemon thread).
    """
    outcome = {}

    def target():
        try:
            outcome["value"] = func(*args)
        except (OSError, ValueError) as exc:  # handed over to the waiting thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="smtp-engine-lookup", daemon=True)
    worker.start()
    worker.join(max(seconds, 0))
    if worker.is_alive():
        raise TimeoutError(f"no answer within {seconds:.1f} seconds")
    if "error" in outcome:
        raise outcome["error"]
    if "value" not in outcome:
        raise OSError(f"{getattr(func, '__name__', 'look-up')} failed")
    return outcome["value"]


def normalize_host(host):
    host = (host or "").strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


def resolve(host, port, deadline):
    if not host:
        raise socket.gaierror(socket.EAI_NONAME, "no server name given")
    wait = deadline.socket_timeout()
    return run_bounded(socket.getaddrinfo, wait, host, port, 0, socket.SOCK_STREAM)


def connect_any(addresses, deadline, transcript, watchdog=None):
    last_error = OSError("no address to connect to")
    for family, kind, proto, _name, sockaddr in addresses:
        host, port = sockaddr[:2]
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        sock = None
        try:
            sock = socket.socket(family, kind, proto)
            if watchdog is not None:
                watchdog.arm(sock, deadline)
            sock.settimeout(deadline.socket_timeout())
            sock.connect(sockaddr)
        except OSError as exc:
            if sock is not None:
                sock.close()
            if watchdog is not None:
                watchdog.disarm()
            transcript.event(f"Connecting to {where}: {exc}")
            last_error = exc
            if deadline.expired():
                break
        else:
            transcript.event(f"Connected to {where}")
            return sock
    raise last_error


def _local_hostname(sock, deadline):
    # The name smtplib would give in EHLO.
    if not _fqdn_cache:
        wait = min(deadline.remaining(), _FQDN_WAIT)
        with contextlib.suppress(OSError):
            _fqdn_cache.append(run_bounded(socket.getfqdn, wait))
    name = _fqdn_cache[0] if _fqdn_cache else ""
    if "." in name:
        return name
    address = sock.getsockname()[0]
    return f"[IPv6:{address}]" if ":" in address else f"[{address}]"


def tls_context(settings):
    """Return the client TLS context; a pinned certificate replaces verification."""
    if settings.pinned_certificate:
        return unverified_tls_context()
    return verified_tls_context(settings.cafile)


def verified_tls_context(cafile=None):
    """Return a context that verifies against the system's authorities and ``cafile``.

    Loading the authorities costs more than a whole SMTP exchange on a fast
    network, so contexts are shared (an ``SSLContext`` may serve many
    sockets and threads); a changed CA file gives a new one.
    """
    if not cafile:
        return _shared_tls_context(None, None)
    try:
        stat = os.stat(cafile)
        return _shared_tls_context(cafile, (stat.st_mtime_ns, stat.st_size))
    except OSError as exc:  # ssl.SSLError included
        raise ValueError(f"cannot load CA file {cafile}: {exc}") from exc


@functools.lru_cache(maxsize=16)
def _shared_tls_context(cafile, _cafile_stamp):
    context = ssl.create_default_context()
    if cafile:
        context.load_verify_locations(cafile=cafile)
    return context


@functools.cache
def unverified_tls_context():
    """Return a TLS context that accepts any certificate (pinning, probing)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _ReplyReader:
    """The file smtplib reads replies from, within the deadline, recorded.

    A cut-off or malformed line and an overlong reply raise, so that smtplib
    never takes them for a reply.
    """

    def __init__(self, session):
        self._session = session
        self._file = session.sock.makefile("rb")
        self._lines = 0
        self._size = 0

    def readline(self, limit):
        self._session.apply_deadline()
        line = self._file.readline(limit)
        if not line or len(line) >= limit:
            return line  # smtplib: "Connection unexpectedly closed", "Line too long"
        if not line.endswith(b"\n"):
            raise smtplib.SMTPServerDisconnected(
                "Connection closed in the middle of a reply line"
            )
        # Stricter than smtplib, which reads "250\0" or "2500" as 250: a
        # reply line is three digits, then a space, a hyphen or its end.
        well_formed = line[:3].isdigit() and line[3:4] in (b" ", b"-", b"\r", b"\n")
        more = well_formed and line[3:4] == b"-"
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        self._session.transcript.server(text, final=not more)
        if not well_formed:
            raise smtplib.SMTPResponseException(-1, text)
        self._lines, self._size = (
            (self._lines + 1, self._size + len(line)) if more else (0, 0)
        )
        too_many = self._lines > self._session.max_reply_lines
        if too_many or self._size > _MAX_REPLY_BYTES:
            raise smtplib.SMTPResponseException(500, "Reply too long.")
        return line

    def close(self):
        self._file.close()


class SmtpSession(smtplib.SMTP):
    """An ``smtplib.SMTP`` with a step, a masked transcript and a deadline.

    It uses smtplib's private ``SMTPLIB_PRIVATE_NAMES``. ``address``, if
    given, is the IP address to connect to (TLS still verifies the host
    name); ``watchdog`` replaces the session's own, for a caller that may
    stop it early.
    """

    max_reply_lines = _MAX_REPLY_LINES

    def __init__(
        self, settings, deadline=None, ssl_context=None, watchdog=None, address=None
    ):
        self.settings = settings
        self.address = address
        self.step = Step.RESOLVE
        self.transcript = Transcript(
            secret_forms(settings.credentials(), settings.secrets())
        )
        self.deadline = deadline
        self.watchdog = watchdog or Watchdog("smtp-engine-watchdog")
        if ssl_context is None and settings.encryption != "none":
            ssl_context = tls_context(settings)
        self.ssl_context = ssl_context
        # An explicit local name keeps smtplib from looking up the machine's
        # name without a time-out; the real one is chosen once connected.
        super().__init__(
            local_hostname=settings.local_hostname or "localhost",
            timeout=settings.timeout,
        )

    def apply_deadline(self):
        if self.deadline is not None and self.sock is not None:
            self.sock.settimeout(self.deadline.socket_timeout())

    def timed_out(self):
        return self.watchdog.fired or (
            self.deadline is not None and self.deadline.expired()
        )

    def release_deadline(self):
        """Stop the deadline; later operations use ``settings.timeout`` each."""
        self.watchdog.disarm()
        self.deadline = None
        if self.sock is not None:
            self.sock.settimeout(self.settings.timeout)

    def _get_socket(self, host, port, timeout):
        deadline = self.deadline or Deadline(timeout)
        # smtplib takes the TLS server name from ``_host``, which only its
        # constructor sets; this session connects later, by ``connect()``.
        self._host = host
        self.step = Step.RESOLVE
        addresses = resolve(self.address or host, port, deadline)
        self.step = Step.CONNECT
        watchdog = self.watchdog if self.deadline is not None else None
        sock = connect_any(addresses, deadline, self.transcript, watchdog)
        try:
            if self.settings.local_hostname is None:
                self.local_hostname = _local_hostname(sock, deadline)
            if self.settings.encryption == "ssl":
                self.step = Step.TLS
                sock.settimeout(deadline.socket_timeout())
                sock = self.ssl_context.wrap_socket(sock, server_hostname=host)
                record_tls(self.transcript, sock, self.settings.pinned_certificate)
        except BaseException:
            sock.close()
            self.watchdog.disarm()
            raise
        self.step = Step.GREETING
        return sock

    def send(self, s):
        # smtplib sends commands as text and only the message data as bytes.
        if isinstance(s, bytes):
            self.transcript.client_data(len(s))
        else:
            self.transcript.client(s.rstrip("\r\n"))
        self.apply_deadline()
        return super().send(s)

    def getreply(self):
        if self.file is None and self.sock is not None:
            self.file = _ReplyReader(self)
        return super().getreply()

    def auth(self, mechanism, authobject, *, initial_response_ok=True):
        """Authenticate as smtplib does, but in UTF-8, refusing a non-base64 challenge.

        smtplib sends ASCII only; RFC 4616 (PLAIN) specifies UTF-8 and servers
        accept it for LOGIN too.
        """
        mechanism = mechanism.upper()
        initial_response = authobject() if initial_response_ok else None
        # smtplib's auth_login() reads _auth_challenge_count to choose what
        # it answers, so it is counted as smtplib counts it.
        if initial_response is not None:
            response = base64.b64encode(_utf8(initial_response)).decode("ascii")
            code, reply = self.docmd("AUTH", f"{mechanism} {response}")
            self._auth_challenge_count = 1
        else:
            code, reply = self.docmd("AUTH", mechanism)
            self._auth_challenge_count = 0
        while code == 334:
            self._auth_challenge_count += 1
            if self._auth_challenge_count > _MAX_CHALLENGES:
                raise smtplib.SMTPException(
                    f"Server AUTH mechanism loops; last reply: {code}"
                )
            try:
                challenge = base64.decodebytes(reply)
            except binascii.Error as exc:  # no base64: no challenge to answer
                raise smtplib.SMTPAuthenticationError(code, reply) from exc
            answer = authobject(challenge)
            code, reply = self.docmd(base64.b64encode(_utf8(answer)).decode("ascii"))
        if code in (235, 503):
            return code, reply
        raise smtplib.SMTPAuthenticationError(code, reply)

    def auth_cram_md5(self, challenge=None):
        if challenge is None:
            return None
        digest = hmac.new(_utf8(self.password), challenge, "md5").hexdigest()
        return f"{self.user} {digest}"

    def close(self):
        try:
            return super().close()
        finally:
            self.watchdog.disarm()


def record_tls(transcript, sock, pin):
    """Record the new TLS layer of ``sock`` and hold it to the pinned certificate.

    Called right after the handshake: a connection whose certificate is not
    the pinned one never carries a command, let alone a password.
    """
    cipher = (sock.cipher() or ("?",))[0]
    text = f"TLS established ({sock.version()}, {cipher})"
    if pin:
        der = sock.getpeercert(binary_form=True) or b""
        if fingerprint(der) != pin:
            raise CertificateChangedError(der, pin)
        text += ", pinned certificate"
    transcript.event(text)


def establish(session):
    """Connect, greet, secure and log in; on failure ``session.step`` says where.

    The caller closes.
    """
    settings = session.settings
    host = normalize_host(settings.host)
    session.transcript.event(
        f"Connecting to {host} port {settings.port}, security {settings.encryption}"
    )
    code, reply = session.connect(host, settings.port)
    if code != 220:
        raise smtplib.SMTPConnectError(code, reply)
    session.step = Step.EHLO
    session.ehlo_or_helo_if_needed()
    if settings.encryption == "starttls":
        session.step = Step.TLS
        # smtplib raises SMTPNotSupportedError if the server does not offer it.
        session.starttls(context=session.ssl_context)
        record_tls(session.transcript, session.sock, settings.pinned_certificate)
        session.step = Step.EHLO
        session.ehlo_or_helo_if_needed()
    credentials = settings.credentials()
    if credentials:
        session.step = Step.AUTH
        if not session.has_extn("auth"):
            raise smtplib.SMTPNotSupportedError(
                "SMTP AUTH extension not supported by server."
            )
        if settings.oauth_token:
            login_xoauth2(session, *credentials)
        else:
            session.login(*credentials)


def failed_during_exchange(session, exc, started, **values):
    """Return the failed outcome for ``exc``, raised during ``session``."""
    hint, code, reply = diagnose_exception(
        exc, session.step, session.settings, timed_out=session.timed_out()
    )
    error = describe_exception(exc)
    if session.transcript.withhold(error) is WITHHELD:
        error = f"{type(exc).__name__}: {WITHHELD}"
    session.transcript.event(f"Failed at step {session.step.value}: {error}")
    if hint in CERTIFICATE_HINTS:
        changed = find(exc, CertificateChangedError)
        der = changed.der if changed else _read_untrusted_certificate(session)
        values["certificate"] = CertificateDetails.from_der(der) if der else None
    values.update(code=code, reply=session.transcript.withhold(reply))
    return _failed(session.step, hint, error, started, session.transcript, **values)


def _read_untrusted_certificate(session):
    # A handshake that failed verification leaves no certificate to read
    # (Python shows it only after a successful one), so connect once more,
    # unverified, within the deadline, and stop right after the handshake.
    if session.deadline is None or session.deadline.expired():
        return None
    settings = dataclasses.replace(
        session.settings, auth_required=False, pinned_certificate=""
    )
    probe = SmtpSession(
        settings, deadline=session.deadline, ssl_context=unverified_tls_context()
    )
    try:
        probe.connect(normalize_host(settings.host), settings.port)
        if settings.encryption == "starttls":
            probe.ehlo_or_helo_if_needed()
            probe.starttls(context=probe.ssl_context)
        return probe.sock.getpeercert(binary_form=True)
    except NETWORK_ERRORS:
        return None
    finally:
        probe.close()
        session.transcript.event(
            "Read the server's certificate over a second connection, unverified"
        )


def failed_before_connecting(step, hint, error, started, **values):
    """Return the failed outcome for settings found unusable before connecting."""
    transcript = Transcript()
    transcript.event(f"Not connecting: {error}")
    return _failed(step, hint, error, started, transcript, **values)


def _failed(step, hint, error, started, transcript, **values):
    return SmtpOutcome(
        ok=False,
        step=step,
        hint=hint,
        error=error,
        elapsed=time.monotonic() - started,
        transcript=transcript.text(),
        **values,
    )


def credentials_failure(settings, started, **values):
    """Return the failed outcome if a required login is missing or unencrypted.

    Then nothing is sent at all.
    """
    credentials = settings.credentials()
    cleartext = settings.encryption == "none" and not settings.cleartext_login
    if credentials and not all(credentials):
        hint = "auth_not_configured"
        error = "authentication required but no login or password given"
    elif credentials and cleartext:
        hint = "cleartext_login"
        error = "the login would be sent without encryption"
    else:
        return None
    return failed_before_connecting(Step.AUTH, hint, error, started, **values)


def open_connection(settings: SmtpSettings) -> SmtpSession:
    """Return a connected, secured and logged-in session for ``settings``.

    The set-up must finish within ``settings.timeout``, each later operation
    then has ``settings.timeout``. Raises ``SmtpEngineError`` on failure.
    """
    started = time.monotonic()
    refused = credentials_failure(settings, started)
    if refused is not None:
        raise SmtpEngineError(refused)
    session = SmtpSession(settings, deadline=Deadline(settings.timeout))
    try:
        establish(session)
    except NETWORK_ERRORS as exc:
        result = failed_during_exchange(session, exc, started)
        session.close()
        raise SmtpEngineError(result) from exc
    except BaseException:
        session.close()
        raise
    session.release_deadline()
    return session
