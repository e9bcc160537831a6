"""Real SMTP servers on the loopback interface, for tests.

``LoopbackSmtpServer`` runs aiosmtpd in a background thread with real TLS
(certificates from ``make_test_certificates``), optional AUTH PLAIN, LOGIN
or CRAM-MD5,
and configurable refusals. ``SilentServer`` and ``TricklingServer`` misbehave
on purpose, to test time-outs; ``refused_port`` gives a port where nothing
listens. Every server is a context manager that stops its threads and closes
its sockets on exit. aiosmtpd and cryptography are imported only when used,
so that importing this module costs nothing.
"""

import base64
import contextlib
import datetime
import email.policy
import hashlib
import hmac
import ipaddress
import logging
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
# aiosmtpd's logger.
SERVER_LOGGER = "mail.log"


def _check_loopback(host):
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"test servers listen on loopback only, not on {host!r}")


def _family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(host="127.0.0.1"):
    """Return a TCP port that was free on ``host`` a moment ago."""
    _check_loopback(host)
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def refused_port(host="127.0.0.1"):
    """Return a port on ``host`` where nothing listens: connecting is refused."""
    return free_port(host)


def ipv6_available():
    """Return whether this machine can listen and connect on ``::1``."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


# -- certificates ------------------------------------------------------------


@dataclass(frozen=True)
class TestCertificates:
    """Paths of PEM files made by ``make_test_certificates``."""

    __test__ = False  # not a test class, whatever its name

    ca_cert: Path
    server_cert: Path
    server_key: Path
    other_host_cert: Path
    other_host_key: Path
    self_signed_cert: Path
    self_signed_key: Path

    def sha256(self, name):
        """Return the SHA-256 of the certificate "server", "other_host"... (DER)."""
        pem = getattr(self, f"{name}_cert").read_text()
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()

    def pair(self, name):
        """Return ``(cert, key)`` of "server", "other_host" or "self_signed"."""
        if name not in ("server", "other_host", "self_signed"):
            raise ValueError(f"unknown certificate {name!r}")
        return getattr(self, f"{name}_cert"), getattr(self, f"{name}_key")


def _names(x509, dns_names, ip_addresses):
    return x509.SubjectAlternativeName(
        [x509.DNSName(name) for name in dns_names]
        + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    )


def _write_pem(path, data):
    path.write_bytes(data)
    return path


def make_test_certificates(directory):
    """Create a CA and certificates signed by it in ``directory``.

    ``server`` is valid for localhost, 127.0.0.1 and ::1; ``other_host`` only
    for mail.example.invalid; ``self_signed`` is valid for the loopback names
    but signed by nobody trusted. Keys are EC P-256, valid for two days, and
    the extensions satisfy the strict checks of recent Python versions.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before = now - datetime.timedelta(hours=1)
    not_after = now + datetime.timedelta(days=2)

    def key_pem(key):
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def build(subject_cn, key, issuer_name, issuer_key, *, ca, issuer_ski, san=None):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer_name or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
            .add_extension(ski, False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                    issuer_ski or ski
                ),
                False,
            )
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=ca,
                    crl_sign=ca,
                    encipher_only=False,
                    decipher_only=False,
                ),
                True,
            )
        )
        if not ca:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False
            )
        if san is not None:
            builder = builder.add_extension(san, False)
        return builder.sign(issuer_key or key, hashes.SHA256()), ski

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert, ca_ski = build(
        "email_account test CA", ca_key, None, None, ca=True, issuer_ski=None
    )
    loopback = _names(x509, ["localhost"], ["127.0.0.1", "::1"])
    leaves = {
        "server": ("localhost", loopback, True),
        "other_host": (
            "mail.example.invalid",
            _names(x509, ["mail.example.invalid"], []),
            True,
        ),
        "self_signed": ("localhost", loopback, False),
    }
    paths = {"ca_cert": _write_pem(directory / "ca.cert.pem", _cert_pem(ca_cert))}
    for label, (common_name, san, signed_by_ca) in leaves.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert, _ski = build(
            common_name,
            key,
            ca_cert.subject if signed_by_ca else None,
            ca_key if signed_by_ca else None,
            ca=False,
            issuer_ski=ca_ski if signed_by_ca else None,
            san=san,
        )
        paths[f"{label}_cert"] = _write_pem(
            directory / f"{label}.cert.pem", _cert_pem(cert)
        )
        paths[f"{label}_key"] = _write_pem(directory / f"{label}.key.pem", key_pem(key))
    return TestCertificates(**paths)


def _cert_pem(cert):
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def server_tls_context(cert, key):
    """Return a server-side TLS context serving ``cert`` with ``key``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    return context


# -- aiosmtpd ------------------------------------------------------------------


@dataclass
class ReceivedMessage:
    """One message accepted by a ``LoopbackSmtpServer``."""

    mail_from: str
    rcpt_tos: list
    raw: bytes
    message: EmailMessage
    auth_login: str | None = None
    peer: tuple = field(default=())


def _reply(code_and_text):
    code, text = code_and_text
    return f"{code} {text}"


class _Handler:
    """aiosmtpd handler: records what arrives and refuses as configured."""

    def __init__(self, server):
        self._server = server

    def _needs_auth(self, session):
        needs = self._server.auth or self._server.oauth_tokens
        return bool(needs) and not session.authenticated

    async def auth_CRAM__MD5(self, server, _args):
        """CRAM-MD5 (RFC 2195), which aiosmtpd does not have, over UTF-8."""
        from aiosmtpd.smtp import MISSING, AuthResult

        challenge = f"<{id(server)}.{len(self._server.commands)}@localhost>".encode()
        response = await server.challenge_auth(challenge)
        if response is MISSING:
            return AuthResult(success=False, handled=True)
        login, _sep, digest = response.rpartition(b" ")
        login = login.decode("utf-8", "replace")
        password = self._server.auth.get(login)
        expected = (
            hmac.new(password.encode(), challenge, "md5").hexdigest().encode()
            if password is not None
            else b""
        )
        if expected and hmac.compare_digest(digest, expected):
            return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)

    async def auth_XOAUTH2(self, server, args):
        """XOAUTH2 as Microsoft 365 and Google speak it: a bearer token."""
        from aiosmtpd.smtp import MISSING, AuthResult

        if len(args) > 1:
            response = base64.b64decode(args[1])
        else:
            response = await server.challenge_auth("")
            if response is MISSING:
                return AuthResult(success=False, handled=True)
        fields = dict(
            part.split("=", 1) for part in response.decode().split("\x01") if part
        )
        login = fields.get("user", "")
        expected = self._server.oauth_tokens.get(login)
        if expected and fields.get("auth") == f"Bearer {expected}":
            self._server.oauth_logins.append((login, expected))
            return AuthResult(success=True, auth_data=login)
        # The providers explain a refused token in a challenge first.
        await server.challenge_auth('{"status":"401","schemes":"bearer"}')
        return AuthResult(
            success=False, handled=False, message=self._server.auth_refusal
        )

    async def handle_EHLO(self, _server, session, _envelope, hostname, responses):
        self._server.commands.append("EHLO")
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, _server, session, envelope, address, mail_options):
        self._server.commands.append("MAIL")
        if self._needs_auth(session):
            return "530 5.7.0 Authentication required"
        if self._server.reject_sender:
            return _reply(self._server.reject_sender)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, _server, session, envelope, address, rcpt_options):
        self._server.commands.append("RCPT")
        if self._needs_auth(session):
            return "530 5.7.0 Authentication required"
        if self._server.reject_recipient:
            return _reply(self._server.reject_recipient)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_QUIT(self, server, _session, _envelope):
        self._server.commands.append("QUIT")
        if self._server.drop_on_quit:
            server.transport.close()
        return "221 Bye"

    async def handle_exception(self, error):
        # A client that gives up during the TLS handshake (as ours does on a
        # bad certificate) is expected here, not a server error to log.
        self._server.errors.append(error)
        return f"500 Error: ({type(error).__name__}) {error}"

    async def handle_DATA(self, _server, session, envelope):
        self._server.commands.append("DATA")
        if self._server.reject_data:
            return _reply(self._server.reject_data)
        raw = envelope.original_content or b""
        self._server.messages.append(
            ReceivedMessage(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                raw=raw,
                message=BytesParser(policy=email.policy.default).parsebytes(raw),
                auth_login=session.auth_data if session.authenticated else None,
                peer=tuple(session.peer or ()),
            )
        )
        return self._server.data_reply or "250 Message accepted for delivery"


class _BelowLevel(logging.Filter):
    def __init__(self, level):
        super().__init__()
        self.level = level

    def filter(self, record):
        return record.levelno >= self.level


class LoopbackSmtpServer:
    """A real SMTP server (aiosmtpd) on a loopback address, in a thread.

    ``tls``: "none", "starttls" (offered after EHLO; ``require_starttls``
    refuses other commands before it) or "ssl" (implicit TLS).
    ``certs`` and ``cert`` ("server", "other_host", "self_signed") choose the
    certificate served. ``auth`` maps accepted logins to passwords; with it
    MAIL and RCPT need a login, and AUTH is offered only over TLS when
    ``tls`` is "starttls" (as real servers do) and always otherwise.
    ``reject_sender``, ``reject_recipient`` and ``reject_data`` are
    ``(code, text)`` replies for MAIL, RCPT and the end of DATA;
    ``data_reply`` replaces the reply to an accepted message;
    ``drop_on_quit`` closes the connection on QUIT without a reply.
    ``oauth_tokens`` maps logins to the bearer tokens XOAUTH2 accepts
    (``oauth_logins`` lists the pairs that logged in); ``auth_refusal``
    replaces the reply to a refused login, with a password or a token.

    ``messages`` lists what was received, ``commands`` the commands seen,
    ``connections`` the number of client connections, ``errors`` the
    exceptions raised while serving (a client leaving in the middle of a
    TLS handshake, for example). While the server runs, records of the
    ``mail.log`` logger below ``log_level`` are dropped: aiosmtpd warns
    about every odd client, and the tests send odd clients on purpose.
    """

    def __init__(
        self,
        *,
        host="127.0.0.1",
        port=0,
        tls="none",
        require_starttls=False,
        certs=None,
        cert="server",
        auth=None,
        auth_mechanisms=("PLAIN", "LOGIN"),
        reject_sender=None,
        reject_recipient=None,
        reject_data=None,
        data_reply=None,
        drop_on_quit=False,
        server_hostname="localhost",
        log_level=logging.ERROR,
        oauth_tokens=None,
        auth_refusal=None,
    ):
        _check_loopback(host)
        if tls not in ("none", "starttls", "ssl"):
            raise ValueError(f"unknown tls mode {tls!r}")
        if tls != "none" and certs is None:
            raise ValueError("a TLS server needs certs (make_test_certificates)")
        self.host = host
        self.port = port
        self.tls = tls
        self.require_starttls = require_starttls
        self.certs = certs
        self.cert = cert
        self.auth = dict(auth or {})
        self.auth_mechanisms = tuple(m.upper() for m in auth_mechanisms)
        self.reject_sender = reject_sender
        self.reject_recipient = reject_recipient
        self.reject_data = reject_data
        self.data_reply = data_reply
        self.drop_on_quit = drop_on_quit
        self.server_hostname = server_hostname
        self.log_level = log_level
        self.oauth_tokens = dict(oauth_tokens or {})
        self.auth_refusal = auth_refusal
        self.oauth_logins = []
        if self.oauth_tokens:
            self.auth_mechanisms += ("XOAUTH2",)
        self.messages = []
        self.commands = []
        self.errors = []
        self.connections = 0
        self._controller = None
        self._log_filter = None

    def _authenticate(self, _server, _session, _envelope, _mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        if login in self.auth and self.auth[login] == password:
            return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False, message=self.auth_refusal)

    def _controller_class(self):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import SMTP, Session

        owner = self

        class QuietSession(Session):
            # aiosmtpd's own code sets this deprecated attribute and then
            # logs a deprecation warning about itself on every login.
            @property
            def login_data(self):
                return self._login_data

            @login_data.setter
            def login_data(self, value):
                self._login_data = value

        class LoopbackSMTP(SMTP):
            def _create_session(self):
                return QuietSession(self.loop)

            async def smtp_AUTH(self, arg):
                owner.commands.append("AUTH")
                return await super().smtp_AUTH(arg)

        class LoopbackController(Controller):
            def factory(self):
                owner.connections += 1
                return LoopbackSMTP(self.handler, **self.SMTP_kwargs)

        return LoopbackController

    def start(self):
        """Start listening; return self."""
        if self._controller is not None:
            raise RuntimeError("server already started")
        if not self.port:
            self.port = free_port(self.host)
        context = None
        if self.tls != "none":
            context = server_tls_context(*self.certs.pair(self.cert))
        kwargs = {}
        if self.tls == "starttls":
            kwargs.update(tls_context=context, require_starttls=self.require_starttls)
        elif self.tls == "ssl":
            kwargs["ssl_context"] = context
        if self.auth or self.oauth_tokens:
            kwargs.update(
                authenticator=self._authenticate,
                # MAIL and RCPT check the login themselves (see _Handler):
                # aiosmtpd's own auth_required warns when AUTH is allowed
                # without TLS, which these tests do on purpose.
                auth_required=False,
                auth_require_tls=self.tls == "starttls",
                auth_exclude_mechanism=[
                    m
                    for m in ("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2")
                    if m not in self.auth_mechanisms
                ],
            )
        controller = self._controller_class()(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            server_hostname=self.server_hostname,
            ready_timeout=10.0,
            **kwargs,
        )
        self._log_filter = _BelowLevel(self.log_level)
        logging.getLogger(SERVER_LOGGER).addFilter(self._log_filter)
        try:
            controller.start()
        except BaseException:
            self._remove_log_filter()
            raise
        self._controller = controller
        # The controller's own start-up probe is not a client.
        self.connections = 0
        return self

    def _remove_log_filter(self):
        log_filter, self._log_filter = self._log_filter, None
        if log_filter is not None:
            logging.getLogger(SERVER_LOGGER).removeFilter(log_filter)

    def stop(self):
        """Stop the server and its thread."""
        controller, self._controller = self._controller, None
        try:
            if controller is not None:
                controller.stop()
        finally:
            self._remove_log_filter()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


# -- misbehaving servers --------------------------------------------------------


class _SocketServer:
    """A loopback TCP listener whose connections are served by ``_serve``."""

    _POLL = 0.05

    def __init__(self, host="127.0.0.1", port=0):
        _check_loopback(host)
        self.host = host
        self.port = port
        self.connections = 0
        self._listener = None
        self._stop = threading.Event()
        self._threads = []
        self._clients = []
        self._lock = threading.Lock()

    def start(self):
        """Start listening; return self."""
        listener = socket.socket(_family(self.host), socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(8)
        listener.settimeout(self._POLL)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._spawn(self._accept_loop)
        return self

    def _spawn(self, target, *args):
        thread = threading.Thread(
            target=target, args=args, name=type(self).__name__, daemon=True
        )
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                client, _address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._clients.append(client)
                self.connections += 1
            self._spawn(self._serve, client)

    def _serve(self, client):
        raise NotImplementedError

    def stop(self):
        """Stop accepting, close every connection and join every thread."""
        self._stop.set()
        with self._lock:
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(5)
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


class SilentServer(_SocketServer):
    """Accepts connections and never says anything."""

    def _serve(self, client):
        # Read and drop whatever comes, until the client leaves or stop().
        client.setblocking(False)
        while not self._stop.is_set():
            readable, _w, _x = select.select([client], [], [], self._POLL)
            if readable:
                try:
                    if not client.recv(4096):
                        return
                except BlockingIOError:
                    continue
                except OSError:
                    return


class TricklingServer(_SocketServer):
    """Sends an endless multi-line "220-" greeting, one byte at a time."""

    def __init__(self, host="127.0.0.1", port=0, interval=0.05):
        super().__init__(host, port)
        self.interval = interval

    def _serve(self, client):
        line = b"220-wait\r\n"
        position = 0
        while not self._stop.wait(self.interval):
            try:
                client.sendall(line[position : position + 1])
            except OSError:
                return
            position = (position + 1) % len(line)


class ScriptedServer(_SocketServer):
    """Serves each connection by a script of its own, to play a hostile server.

    ``scripts`` is a queue: each new connection takes the next script, and
    is closed at its end (no script left: at once). A script is a sequence of turns
    ``(read, actions)``: ``read`` is None (act at once), "line" (wait for a
    command line) or "body" (wait for message data up to ``CRLF.CRLF``);
    ``actions`` are tuples run in order:

    - ``("send", data)``: send the bytes;
    - ``("drip", data, interval)``: send them one byte at a time;
    - ``("endless", line, interval)``: send ``line`` again and again;
    - ``("hang",)``: say nothing until the client leaves;
    - ``("close",)``: close the connection;
    - ``("tls",)``: do the server's side of a TLS handshake (``certs``).

    ``received`` lists, per connection, what each turn read.
    """

    def __init__(self, host="127.0.0.1", port=0, certs=None):
        super().__init__(host, port)
        self.scripts = []
        self.received = []
        self._tls = server_tls_context(*certs.pair("server")) if certs else None

    def _serve(self, client):
        with self._lock:
            script = self.scripts.pop(0) if self.scripts else ()
            received = []
            self.received.append(received)
        client.settimeout(self._POLL)
        # Small writes (drips) go out at once, not after the client's ACK.
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = _ScriptStream(client, self._stop)
        try:
            for read, actions in script:
                if read is not None:
                    received.append(stream.read_turn(read))
                for action in actions:
                    if not stream.act(action, self._tls):
                        return
        except (OSError, EOFError):
            return
        finally:
            stream.close()
            with self._lock:
                if client in self._clients:
                    self._clients.remove(client)


class _ScriptStream:
    """One scripted connection: reads the client and plays the actions."""

    _LONGEST_WAIT = 10.0

    def __init__(self, sock, stop):
        self.sock = sock
        self._stop = stop
        self._buffer = b""

    def _recv(self):
        give_up = time.monotonic() + self._LONGEST_WAIT
        while not self._stop.is_set() and time.monotonic() < give_up:
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, ssl.SSLWantReadError):
                continue
            if not data:
                raise EOFError
            return data
        raise EOFError

    def read_turn(self, kind):
        end = b"\r\n.\r\n" if kind == "body" else b"\n"
        while end not in self._buffer:
            self._buffer += self._recv()
        unit, _sep, self._buffer = self._buffer.partition(end)
        return unit + end

    def hang(self):
        while True:
            self._recv()

    def act(self, action, tls_context):
        """Play one action; return False once the connection is closed."""
        kind, *args = action
        if kind == "send":
            self.sock.sendall(args[0])
        elif kind == "drip":
            data, interval = args
            for index in range(len(data)):
                self.sock.sendall(data[index : index + 1])
                if self._stop.wait(interval):
                    return False
        elif kind == "endless":
            line, interval = args
            while not self._stop.wait(interval):
                self.sock.sendall(line)
            return False
        elif kind == "hang":
            self.hang()
        elif kind == "close":
            return False
        elif kind == "tls":
            self.sock.settimeout(self._LONGEST_WAIT)
            self.sock = tls_context.wrap_socket(self.sock, server_side=True)
            self.sock.settimeout(_SocketServer._POLL)
        else:
            raise ValueError(f"unknown action {kind!r}")
        return True

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()
