"""Find an account's outgoing server from its e-mail address.

The sources are tried in the order mail clients try them, and the first that
gives an outgoing server wins:

1. the domain's DNS SRV records for message submission, ``_submissions._tcp``
   (implicit TLS, RFC 8314) before ``_submission._tcp`` (STARTTLS, RFC 6186);
2. the domain's own configuration file in Thunderbird's format, at
   ``autoconfig.<domain>`` and under ``<domain>/.well-known``;
3. Mozilla's ISP database;
4. a known provider (see ``providers``), by the address's domain or by the
   domain's MX records;
5. a probe of the usual ports of ``smtp.<domain>`` and ``mail.<domain>``, in
   parallel, which proposes the best combination that answers.

Everything runs under one deadline. The probe never sends a credential: it
connects, reads the greeting, says EHLO, does the TLS handshake (directly or
after STARTTLS) and leaves. A combination whose certificate does not verify
still answers, but comes after every one whose certificate does.

Name look-ups go through dnspython's resolver, never the system's
``getaddrinfo``: the resolver, like every URL, is an option, so that tests
point everything at loopback servers.
"""

import contextlib
import functools
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
import urllib.parse
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from xml.etree import ElementTree

import dns.exception
import dns.resolver

from .connection import Deadline
from .providers import (
    Provider,
    provider_for_domain,
    provider_for_host,
    provider_for_mx,
)
from .texts import SECURITY_LABELS, _lt, render

SUBMISSION_RECORDS = (
    ("_submissions._tcp", "ssl"),
    ("_submission._tcp", "starttls"),
)
# HTTPS only by default: a configuration file fetched in clear text could be
# replaced on the way, and would send the password to another server.
AUTOCONFIG_URLS = (
    "https://autoconfig.{domain}/mail/config-v1.1.xml?emailaddress={email}",
    "https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml",
)
ISPDB_URL = "https://autoconfig.thunderbird.net/v1.1/{domain}"
# In the order of preference of RFC 8314: implicit TLS first.
PROBE_COMBINATIONS = (
    (465, "ssl"),
    (587, "starttls"),
    (25, "starttls"),
    (25, "none"),
    (2525, "starttls"),
)
PROBE_HOSTS = ("smtp.{domain}", "mail.{domain}")

SOURCES = ("srv", "autoconfig", "ispdb", "provider", "probe")
_SOCKET_TYPES = {"SSL": "ssl", "STARTTLS": "starttls", "PLAIN": "none"}
# Authentication methods of the autoconfig format that a password serves.
_PASSWORD_AUTH = {"password-cleartext", "password-encrypted", "plain", "none"}
_MAX_DOCUMENT = 256 * 1024
_MAX_LINE = 8192
_MAX_REPLY_LINES = 100
_MAX_PROBES = 16
_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_USER_AGENT = "email_account settings detection"

SOURCE_TEXTS = {
    "srv": _lt("Found in the DNS record %(detail)s of the domain."),
    "autoconfig": _lt("Found in the domain's configuration file %(detail)s."),
    "ispdb": _lt("Found in Mozilla's database of mail providers (%(detail)s)."),
    "provider": _lt("The documented settings of %(provider)s (%(detail)s)."),
    "probe": _lt(
        "Found by trying the usual ports: %(host)s answered on port %(port)s "
        "with %(security)s."
    ),
}
UNVERIFIED_TEXT = _lt(
    "The certificate of %(host)s could not be verified (%(reason)s), and no "
    "combination with a valid certificate answered. Check the account: if "
    "the provider confirms the certificate, trust it."
)
NOT_FOUND_TEXT = _lt(
    "No settings were found for %(domain)s: no DNS record, configuration file "
    "or known provider, and no server answered on the usual ports. Enter the "
    "SMTP server, port and security that the provider documents."
)
DETECT_TEXTS = (
    *SOURCE_TEXTS.values(),
    UNVERIFIED_TEXT,
    NOT_FOUND_TEXT,
    *SECURITY_LABELS.values(),
)


@dataclass(frozen=True)
class DetectOptions:
    """Where detection looks, all replaceable for tests.

    ``resolver`` is a ``dns.resolver.Resolver`` (None: the system's
    configuration). URL templates take ``{domain}`` (in IDNA form) and
    ``{email}`` (URL-quoted); an empty ``ispdb_url`` skips the database.
    ``cafile`` is trusted in addition to the system's authorities, as for
    sending.
    """

    resolver: object = None
    autoconfig_urls: tuple[str, ...] = AUTOCONFIG_URLS
    ispdb_url: str = ISPDB_URL
    probe_hosts: tuple[str, ...] = PROBE_HOSTS
    probe_combinations: tuple[tuple[int, str], ...] = PROBE_COMBINATIONS
    cafile: str | None = None
    local_hostname: str = "localhost"


@dataclass(frozen=True)
class DetectedSettings:
    """An outgoing server found for an address, and where it came from.

    ``detail`` names the record, URL or mail exchanger that gave it.
    ``certificate_error`` is empty, or why the server's certificate did not
    verify (the probe found nothing better).
    """

    host: str
    port: int
    encryption: str
    source: str
    detail: str = ""
    provider: Provider | None = None
    certificate_error: str = ""


@dataclass(frozen=True)
class Detection:
    """The outcome of ``detect_settings``: settings or None, and what was tried."""

    domain: str
    settings: DetectedSettings | None
    log: tuple[str, ...] = ()
    elapsed: float = 0.0
    provider: Provider | None = field(default=None)

    def describe(self, translate=lambda text: text):
        """Return, translated, where the settings came from and what to know."""
        found = self.settings
        if found is None:
            lines = [render(NOT_FOUND_TEXT, translate, {"domain": self.domain})]
        else:
            provider = found.provider or self.provider
            lines = [
                render(
                    SOURCE_TEXTS[found.source],
                    translate,
                    {
                        "detail": found.detail,
                        "provider": provider.name if provider else "",
                        "host": found.host,
                        "port": found.port,
                        "security": translate(SECURITY_LABELS[found.encryption]),
                    },
                )
            ]
            if found.certificate_error:
                lines.append(
                    render(
                        UNVERIFIED_TEXT,
                        translate,
                        {"host": found.host, "reason": found.certificate_error},
                    )
                )
        provider = (found and found.provider) or self.provider
        if provider and provider.note:
            lines.append(translate(provider.note))
        return "\n".join(lines)


def nameserver_resolver(entries):
    """Return a resolver that asks only the DNS servers ``entries``.

    Each entry is an IP address, with ``:port`` if not 53 (an IPv6 address
    then in brackets); all use the port of the first.
    """
    parsed = [urllib.parse.urlsplit(f"//{entry}") for entry in entries]
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [str(ipaddress.ip_address(p.hostname)) for p in parsed]
    resolver.port = parsed[0].port or 53
    return resolver


def address_domain(email):
    """Return the domain of ``email`` in IDNA (ASCII) form, lower case.

    Raises ``ValueError`` for an address without a valid domain.
    """
    local, _at, domain = (email or "").strip().rpartition("@")
    domain = domain.rstrip(".").lower()
    if not local or not domain:
        raise ValueError(f"not an e-mail address: {email!r}")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"not a valid domain: {domain!r}") from exc
    if "." not in ascii_domain or not _valid_host(ascii_domain):
        raise ValueError(f"not a valid domain: {domain!r}")
    return ascii_domain


def _valid_host(host):
    return 0 < len(host) <= 253 and all(
        _HOSTNAME_LABEL.match(label) for label in host.split(".")
    )


def detect_settings(email, timeout=30.0, options=None):
    """Find the outgoing server of ``email`` within ``timeout`` seconds.

    :return: a ``Detection``; its ``settings`` is None when nothing was found
    :raises ValueError: when ``email`` has no valid domain
    """
    domain = address_domain(email)
    run = _Run(options or DetectOptions(), Deadline(timeout))
    with run:
        found = run.detect(domain, email.strip())
    return Detection(
        domain=domain,
        settings=found,
        log=tuple(run.log),
        elapsed=time.monotonic() - run.started,
        provider=run.provider,
    )


class _Run:
    """One detection: its deadline, resolver, open sockets and log."""

    def __init__(self, options, deadline):
        self.options = options
        self.deadline = deadline
        self.started = time.monotonic()
        self.resolver = options.resolver or dns.resolver.Resolver()
        self.log = []
        self.provider = None
        self._lock = threading.Lock()
        self._sockets = set()
        self._aborted = False
        self._watchdog = None

    # -- deadline and sockets ----------------------------------------------

    def __enter__(self):
        # At the deadline every socket still open is shut down: no source
        # and no probe can hold the caller past it.
        self._watchdog = threading.Timer(self.deadline.remaining(), self.abort)
        self._watchdog.name = "smtp-engine-detect-watchdog"
        self._watchdog.daemon = True
        self._watchdog.start()
        return self

    def __exit__(self, *exc_info):
        self._watchdog.cancel()
        self._watchdog.join()
        self.abort()

    def abort(self):
        """Shut down every open socket; later connections fail at once."""
        with self._lock:
            self._aborted = True
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def step_wait(self):
        """The longest one source may wait: a quarter of the time, at most.

        So that a server that never answers leaves time for the probe.
        """
        return min(self.deadline.socket_timeout(), max(self.deadline.seconds / 4, 1))

    def open(self, address, port, timeout=None):
        """Return a TCP socket connected to ``address`` and its watch.

        The watch is a duplicate of the socket that ``abort`` shuts down,
        which ends any wait on the socket, even once TLS has wrapped it.
        The caller closes the socket and hands the watch to ``forget``.
        """
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        watch = sock.dup()
        with self._lock:
            aborted = self._aborted
            if not aborted:
                self._sockets.add(watch)
        try:
            if aborted:
                raise TimeoutError("detection stopped")
            sock.settimeout(timeout or self.deadline.socket_timeout())
            sock.connect((address, port))
        except BaseException:
            sock.close()
            self.forget(watch)
            raise
        return sock, watch

    def forget(self, watch):
        """Stop watching a socket that ``open`` returned."""
        with self._lock:
            self._sockets.discard(watch)
        watch.close()

    def note(self, text):
        with self._lock:
            self.log.append(text)

    # -- name look-ups -------------------------------------------------------

    def query(self, name, rdtype, lifetime=None):
        """Return the records of ``name``, none when it has none or is unknown."""
        try:
            answer = self.resolver.resolve(
                name,
                rdtype,
                lifetime=lifetime or self.step_wait(),
                search=False,
                raise_on_no_answer=False,
            )
        except dns.resolver.NXDOMAIN:
            return []
        except (dns.exception.DNSException, TimeoutError) as exc:
            self.note(f"DNS {rdtype} {name}: {type(exc).__name__}")
            return []
        return list(answer)

    def addresses(self, host):
        """Return the IP addresses of ``host`` (itself if it is one)."""
        with contextlib.suppress(ValueError):
            return [str(ipaddress.ip_address(host))]
        found = []
        for rdtype in ("A", "AAAA"):
            if self.deadline.expired():
                break
            found += [record.address for record in self.query(host, rdtype)]
        return found

    # -- sources -------------------------------------------------------------

    def detect(self, domain, email):
        steps = (
            lambda: self.from_srv(domain),
            lambda: self.from_autoconfig(domain, email),
            lambda: self.from_ispdb(domain),
            lambda: self.from_provider(domain),
            lambda: self.from_probe(domain),
        )
        for source, step in zip(SOURCES, steps, strict=True):
            if self.deadline.expired():
                self.note(f"{source}: no time left")
                return None
            found = step()
            if found is not None:
                self.note(f"{source}: {found.host}:{found.port} {found.encryption}")
                return self.with_provider(found, domain)
            self.note(f"{source}: nothing")
        return None

    def with_provider(self, found, domain):
        if found.provider is not None:
            return found
        provider = provider_for_domain(domain) or provider_for_host(found.host)
        provider = provider or self.provider
        if provider is None:
            return found
        return DetectedSettings(**{**found.__dict__, "provider": provider})

    def from_srv(self, domain):
        for prefix, encryption in SUBMISSION_RECORDS:
            name = f"{prefix}.{domain}"
            records = self.query(name, "SRV")
            # RFC 2782: lowest priority first, then the heaviest weight.
            records.sort(key=lambda r: (r.priority, -r.weight))
            for record in records:
                host = record.target.to_text(omit_final_dot=True).lower()
                # A target of "." says the service is not offered (RFC 6186).
                if host and host != "." and _valid_host(host) and record.port:
                    return DetectedSettings(
                        host, record.port, encryption, "srv", detail=name
                    )
        return None

    def from_autoconfig(self, domain, email):
        urls = [
            template.format(domain=domain, email=urllib.parse.quote(email, safe="@"))
            for template in self.options.autoconfig_urls
        ]
        if not urls:
            return None
        wait_for = self.step_wait()
        # In parallel, as mail clients do; the first URL that answers wins.
        with ThreadPoolExecutor(
            max_workers=len(urls), thread_name_prefix="smtp-engine-autoconfig"
        ) as pool:
            results = list(pool.map(lambda url: self.config_file(url, wait_for), urls))
        for url, found in zip(urls, results, strict=True):
            if found is not None:
                return DetectedSettings(*found, "autoconfig", detail=url)
        return None

    def from_ispdb(self, domain):
        if not self.options.ispdb_url:
            return None
        url = self.options.ispdb_url.format(domain=domain)
        found = self.config_file(url, self.step_wait())
        if found is None:
            return None
        return DetectedSettings(*found, "ispdb", detail=url)

    def from_provider(self, domain):
        provider = provider_for_domain(domain)
        detail = domain
        if provider is None:
            records = sorted(self.query(domain, "MX"), key=lambda r: r.preference)
            exchanges = [r.exchange.to_text(omit_final_dot=True) for r in records]
            provider = provider_for_mx(exchanges)
            if provider is not None:
                detail = "MX " + next(e for e in exchanges if provider.matches_mx(e))
        self.provider = provider
        if provider is None or not provider.host:
            return None
        return DetectedSettings(
            provider.host,
            provider.port,
            provider.encryption,
            "provider",
            detail=detail,
            provider=provider,
        )

    def config_file(self, url, wait_for):
        """Return ``(host, port, encryption)`` from the config file at ``url``."""
        try:
            document = self.fetch(url, wait_for)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self.note(f"GET {url}: {type(exc).__name__}: {exc}")
            return None
        if document is None:
            return None
        try:
            return parse_client_config(document, url_domain(url))
        except (ElementTree.ParseError, ValueError) as exc:
            self.note(f"GET {url}: not a usable configuration file: {exc}")
            return None

    def fetch(self, url, wait_for):
        """Return the body of a successful GET of ``url``, or None."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an HTTP URL: {url}")
        tls = None
        if parts.scheme == "https":
            tls = _tls_context(self.options.cafile)
        port = parts.port or (443 if tls else 80)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        for address in self.addresses(parts.hostname):
            connection = _AddressedConnection(
                self, parts.hostname, port, address, wait_for, tls
            )
            try:
                connection.request(
                    "GET",
                    path,
                    headers={"User-Agent": _USER_AGENT, "Accept": "text/xml"},
                )
                response = connection.getresponse()
                if response.status != 200:
                    self.note(f"GET {url}: HTTP {response.status}")
                    return None
                body = response.read(_MAX_DOCUMENT + 1)
            finally:
                connection.close()
            if len(body) > _MAX_DOCUMENT:
                raise ValueError("document too large")
            return body
        self.note(f"GET {url}: {parts.hostname} not found")
        return None

    # -- probe ---------------------------------------------------------------

    def from_probe(self, domain):
        hosts = list(
            dict.fromkeys(
                [*(self.provider.probe_hosts if self.provider else ())]
                + [t.format(domain=domain) for t in self.options.probe_hosts]
            )
        )
        jobs = []
        for host_rank, host in enumerate(hosts):
            addresses = self.addresses(host)
            if not addresses:
                self.note(f"probe: {host} not found")
                continue
            for combo_rank, (port, encryption) in enumerate(
                self.options.probe_combinations
            ):
                jobs.append(
                    _Probe(host, addresses, port, encryption, combo_rank, host_rank)
                )
        if not jobs:
            return None
        best = None
        with ThreadPoolExecutor(
            max_workers=min(len(jobs), _MAX_PROBES),
            thread_name_prefix="smtp-engine-probe",
        ) as pool:
            pending = {pool.submit(self.probe, job): job for job in jobs}
            while pending:
                done, _running = wait(
                    pending,
                    timeout=self.deadline.remaining(),
                    return_when=FIRST_COMPLETED,
                )
                if not done:
                    break
                for future in done:
                    job = pending.pop(future)
                    if future.result() and (best is None or job.rank() < best.rank()):
                        best = job
                # Nothing still running can beat the best found: stop.
                if best and all(j.best_rank() > best.rank() for j in pending.values()):
                    break
            for future in pending:
                future.cancel()
            self.abort()
        if best is None:
            return None
        return DetectedSettings(
            best.host,
            best.port,
            best.encryption,
            "probe",
            detail=best.host,
            certificate_error=best.certificate_error,
        )

    def probe(self, job):
        """Return whether ``job``'s combination answers; sets its outcome."""
        for address in job.addresses:
            try:
                job.certificate_error = _probe_address(self, job, address)
            except (OSError, ValueError) as exc:
                self.note(
                    f"probe {job.host} [{address}]:{job.port} {job.encryption}: "
                    f"{type(exc).__name__}: {exc}"
                )
                if self.deadline.expired():
                    return False
                continue
            job.answered = True
            return True
        return False


@dataclass
class _Probe:
    host: str
    addresses: list
    port: int
    encryption: str
    combo_rank: int
    host_rank: int
    answered: bool = False
    certificate_error: str = ""

    def _tier(self, verified):
        if self.encryption == "none":
            return 2
        return 0 if verified else 1

    def rank(self):
        """Lower is better: verified TLS, then unverified TLS, then clear text."""
        return (
            self._tier(not self.certificate_error),
            self.combo_rank,
            self.host_rank,
        )

    def best_rank(self):
        """The rank this probe would have if it answered at its best."""
        return (self._tier(True), self.combo_rank, self.host_rank)


class _AddressedConnection(http.client.HTTPConnection):
    """HTTP(S) to a host name at an address the run's resolver found."""

    def __init__(self, run, host, port, address, timeout, tls):
        super().__init__(host, port, timeout=timeout)
        self._run = run
        self._address = address
        self._tls = tls
        self._watch = None

    def connect(self):
        self.sock, self._watch = self._run.open(self._address, self.port, self.timeout)
        if self._tls is not None:
            self.sock = self._tls.wrap_socket(self.sock, server_hostname=self.host)

    def close(self):
        result = super().close()
        watch, self._watch = self._watch, None
        if watch is not None:
            self._run.forget(watch)
        return result


def url_domain(url):
    """Return the host name of ``url``."""
    return urllib.parse.urlsplit(url).hostname or ""


def parse_client_config(document, domain=""):
    """Return ``(host, port, encryption)`` of the SMTP server in ``document``.

    ``document`` is a configuration file in Thunderbird's format
    (``clientConfig`` 1.1). Of several outgoing servers the first that a
    password can log in to is taken (the file lists them by preference),
    else the first. ``%EMAILDOMAIN%`` in a host name is the address's
    domain; a server with any other placeholder is skipped. Raises
    ``ValueError`` when the file has no usable SMTP server.
    """
    root = ElementTree.fromstring(document)
    if root.tag != "clientConfig":
        raise ValueError(f"root element is {root.tag}, not clientConfig")
    servers = []
    for server in root.iter("outgoingServer"):
        if server.get("type", "smtp") != "smtp":
            continue
        host = (server.findtext("hostname") or "").strip().lower()
        host = host.replace("%emaildomain%", domain)
        try:
            port = int((server.findtext("port") or "").strip())
        except ValueError:
            continue
        encryption = _SOCKET_TYPES.get(
            (server.findtext("socketType") or "").strip().upper()
        )
        if not (_valid_host(host) and 0 < port < 65536 and encryption):
            continue
        methods = {
            (a.text or "").strip().lower() for a in server.findall("authentication")
        }
        takes_password = not methods or bool(methods & _PASSWORD_AUTH)
        servers.append(((host, port, encryption), takes_password))
    if not servers:
        raise ValueError("no usable outgoing SMTP server")
    return next((s for s, password in servers if password), servers[0][0])


def _probe_address(run, job, address):
    """Talk to one combination at ``address`` without sending credentials.

    Returns "" when everything verified, or why the certificate did not;
    raises ``OSError`` or ``ValueError`` when the combination does not
    answer as SMTP with that security.
    """
    if job.encryption == "ssl":
        try:
            with _ProbeConnection(run, address, job.port) as conn:
                conn.wrap(_tls_context(run.options.cafile), job.host)
                _smtp_greeting(run, conn.sock)
                _quit(run, conn.sock)
            return ""
        except ssl.SSLCertVerificationError as exc:
            reason = exc.verify_message or str(exc)
        # The port speaks TLS; whether it speaks SMTP is seen over a second
        # connection that does not verify, and sends nothing but EHLO.
        with _ProbeConnection(run, address, job.port) as conn:
            conn.wrap(_unverified_context(), job.host)
            _smtp_greeting(run, conn.sock)
            _quit(run, conn.sock)
        return reason
    with _ProbeConnection(run, address, job.port) as conn:
        extensions = _smtp_greeting(run, conn.sock)
        if job.encryption == "none":
            _quit(run, conn.sock)
            return ""
        if "STARTTLS" not in extensions:
            raise ValueError("STARTTLS not offered")
        code, _lines = _command(run, conn.sock, "STARTTLS")
        if code != 220:
            raise ValueError(f"STARTTLS refused: {code}")
        try:
            conn.wrap(_tls_context(run.options.cafile), job.host)
        except ssl.SSLCertVerificationError as exc:
            return exc.verify_message or str(exc)
        _quit(run, conn.sock)
        return ""


class _ProbeConnection:
    """One probe connection: a socket, TLS-wrapped on demand, always closed."""

    def __init__(self, run, address, port):
        self.run = run
        self.address = address
        self.port = port
        self.sock = None
        self.watch = None

    def __enter__(self):
        self.sock, self.watch = self.run.open(self.address, self.port)
        return self

    def wrap(self, context, host):
        self.sock.settimeout(self.run.deadline.socket_timeout())
        self.sock = context.wrap_socket(self.sock, server_hostname=host)

    def __exit__(self, *exc_info):
        self.sock.close()
        self.run.forget(self.watch)


def _quit(run, sock):
    # Politeness only: the answer, or its absence, changes nothing.
    with contextlib.suppress(OSError, ValueError):
        _command(run, sock, "QUIT")


def _smtp_greeting(run, sock):
    """Read a 220 greeting, say EHLO and return the extensions offered."""
    code, _lines = _reply(run, sock)
    if code != 220:
        raise ValueError(f"greeting {code}")
    code, lines = _command(run, sock, f"EHLO {run.options.local_hostname}")
    if code != 250:
        raise ValueError(f"EHLO refused: {code}")
    return {line.split(" ", 1)[0].upper() for line in lines[1:]}


def _command(run, sock, line):
    sock.settimeout(run.deadline.socket_timeout())
    sock.sendall(line.encode("ascii") + b"\r\n")
    return _reply(run, sock)


def _reply(run, sock):
    """Read one SMTP reply: its code and the text of each line."""
    lines = []
    buffer = b""
    while len(lines) < _MAX_REPLY_LINES:
        while b"\n" not in buffer:
            if len(buffer) > _MAX_LINE:
                raise ValueError("reply line too long")
            sock.settimeout(run.deadline.socket_timeout())
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionResetError("connection closed")
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        line = line.rstrip(b"\r")
        try:
            code = int(line[:3])
        except ValueError as exc:
            raise ValueError("not an SMTP reply") from exc
        lines.append(line[4:].decode("ascii", "replace"))
        if line[3:4] != b"-":
            return code, lines
    raise ValueError("reply too long")


@functools.lru_cache(maxsize=8)
def _tls_context(cafile):
    # Loading the system's authorities is slow; a context serves many sockets.
    context = ssl.create_default_context()
    if cafile:
        context.load_verify_locations(cafile=cafile)
    return context


@functools.cache
def _unverified_context():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
