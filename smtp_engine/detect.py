"""Find an account's outgoing server from its e-mail address.

The probe leaves before any login: it never sends a credential. Names are
resolved by dnspython, never ``getaddrinfo``: the resolver, like every URL,
is an option, so that tests point everything at loopback servers.
"""

import concurrent.futures
import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from xml.etree import ElementTree

import dns.exception
import dns.resolver

from .connection import (
    Deadline,
    SmtpSession,
    Watchdog,
    establish,
    unverified_tls_context,
    verified_tls_context,
)
from .providers import Provider, provider_for_domain, provider_for_host, provider_for_mx
from .settings import SmtpSettings, is_valid_host
from .texts import SECURITY_LABELS, _lt, render, untranslated
from .trust_dns import records

SUBMISSION_RECORDS = (("_submissions._tcp", "ssl"), ("_submission._tcp", "starttls"))
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

_SOCKET_TYPES = {"SSL": "ssl", "STARTTLS": "starttls", "PLAIN": "none"}
# Authentication methods of the autoconfig format that a password serves.
_PASSWORD_AUTH = {"password-cleartext", "password-encrypted", "plain", "none"}
_MAX_DOCUMENT = 256 * 1024
_MAX_REPLY_LINES = 100
_MAX_PROBES = 16
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


@dataclass(frozen=True)
class DetectOptions:
    """Where detection looks, all replaceable for tests.

    URL templates take ``{domain}`` (IDNA) and ``{email}`` (URL-quoted); an
    empty ``ispdb_url`` skips the database.
    """

    resolver: object = None
    autoconfig_urls: tuple[str, ...] = AUTOCONFIG_URLS
    ispdb_url: str = ISPDB_URL
    probe_hosts: tuple[str, ...] = PROBE_HOSTS
    probe_combinations: tuple[tuple[int, str], ...] = PROBE_COMBINATIONS
    cafile: str | None = None


@dataclass(frozen=True)
class DetectedSettings:
    """An outgoing server found for an address, and where it came from."""

    host: str
    port: int
    encryption: str
    source: str
    detail: str = ""  # the record, URL or mail exchanger that gave it
    provider: Provider | None = None
    certificate_error: str = ""  # why the certificate did not verify, if it did not


@dataclass(frozen=True)
class Detection:
    """The outcome of ``detect_settings``: settings or None, and what was tried."""

    domain: str
    settings: DetectedSettings | None
    log: tuple[str, ...] = ()
    elapsed: float = 0.0
    provider: Provider | None = None

    def describe(self, translate=untranslated):
        """Return, translated, where the settings came from and what to know."""
        found = self.settings
        provider = (found and found.provider) or self.provider
        if found is None:
            lines = [render(NOT_FOUND_TEXT, translate, {"domain": self.domain})]
        else:
            values = {
                "detail": found.detail,
                "provider": provider.name if provider else "",
                "host": found.host,
                "port": found.port,
                "security": translate(SECURITY_LABELS[found.encryption]),
                "reason": found.certificate_error,
            }
            lines = [render(SOURCE_TEXTS[found.source], translate, values)]
            if found.certificate_error:
                lines.append(render(UNVERIFIED_TEXT, translate, values))
        if provider and provider.note:
            lines.append(translate(provider.note))
        return "\n".join(lines)


def address_domain(email):
    """The domain of ``email``, lower case and in IDNA form, else ValueError."""
    local, _at, domain = (email or "").strip().rpartition("@")
    domain = domain.rstrip(".").lower()
    if not local or not domain:
        raise ValueError(f"not an e-mail address: {email!r}")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"not a valid domain: {domain!r}") from exc
    if "." not in ascii_domain or not is_valid_host(ascii_domain):
        raise ValueError(f"not a valid domain: {domain!r}")
    return ascii_domain


def detect_settings(email, timeout=30.0, options=None):
    """Find the outgoing server of ``email``; ValueError if it has no valid domain."""
    domain = address_domain(email)
    run = _Run(options or DetectOptions(), Deadline(timeout))
    found = run.detect(domain, email.strip())
    elapsed = timeout - run.deadline.remaining()
    return Detection(domain, found, tuple(run.log), elapsed, run.provider)


class _Run:
    """One detection: its deadline, resolver, open connections and log."""

    def __init__(self, options, deadline):
        self.options = options
        self.deadline = deadline
        self.resolver = options.resolver or dns.resolver.Resolver()
        self.log = []
        self.provider = None
        self.lock = threading.Lock()
        self.watchdogs = []
        self.stopped = False

    def watchdog(self):
        """Return a watchdog for one connection, which ``stop`` stops too."""
        watchdog = Watchdog("smtp-engine-detect-watchdog")
        with self.lock:
            self.watchdogs.append(watchdog)
            if self.stopped:
                watchdog.stop()
        return watchdog

    def stop(self):
        """Shut every connection down; later connections fail at once."""
        with self.lock:
            self.stopped = True
            for watchdog in self.watchdogs:
                watchdog.stop()

    def step_wait(self):
        # A quarter of the time at most, so that a silent server leaves time
        # for the probe.
        return min(self.deadline.socket_timeout(), max(self.deadline.seconds / 4, 1))

    def note(self, text):
        with self.lock:
            self.log.append(text)

    def query(self, name, rdtype):
        try:
            return records(self.resolver, name, rdtype, self.step_wait())
        except (dns.exception.DNSException, TimeoutError) as exc:
            self.note(f"DNS {rdtype} {name}: {type(exc).__name__}")
            return []

    def addresses(self, host, purpose):
        with contextlib.suppress(ValueError):
            return [str(ipaddress.ip_address(host))]
        found = []
        for rdtype in ("A", "AAAA"):
            if self.deadline.expired():
                break
            found += [record.address for record in self.query(host, rdtype)]
        if not found:
            self.note(f"{purpose}: {host} not found")
        return found

    def detect(self, domain, email):
        email = urllib.parse.quote(email, safe="@")
        ispdb = self.options.ispdb_url
        steps = {
            "srv": lambda: self.from_srv(domain),
            "autoconfig": lambda: self.from_config_files(
                "autoconfig", self.options.autoconfig_urls, domain, email
            ),
            # Mozilla's database is told the domain only, never the address.
            "ispdb": lambda: self.from_config_files(
                "ispdb", [ispdb] if ispdb else [], domain, email=""
            ),
            "provider": lambda: self.from_provider(domain),
            "probe": lambda: self.from_probe(domain),
        }
        for source, step in steps.items():
            if self.deadline.expired():
                self.note(f"{source}: no time left")
                return None
            found = step()
            if found is not None:
                self.note(f"{source}: {found.host}:{found.port} {found.encryption}")
                provider = found.provider or provider_for_domain(domain)
                provider = provider or provider_for_host(found.host) or self.provider
                return replace(found, provider=provider)
            self.note(f"{source}: nothing")
        return None

    def from_srv(self, domain):
        for prefix, encryption in SUBMISSION_RECORDS:
            name = f"{prefix}.{domain}"
            records = self.query(name, "SRV")
            # RFC 2782: lowest priority first, then the heaviest weight.
            records.sort(key=lambda r: (r.priority, -r.weight))
            for record in records:
                host = record.target.to_text(omit_final_dot=True).lower()
                # A target of "." (not a valid host) says the service is not
                # offered (RFC 6186).
                if is_valid_host(host) and record.port:
                    return DetectedSettings(host, record.port, encryption, "srv", name)
        return None

    def from_config_files(self, source, templates, domain, email):
        # Fetched in parallel, as mail clients do; the first URL's file wins.
        urls = [url.format(domain=domain, email=email) for url in templates]
        if not urls:
            return None
        prefix = f"smtp-engine-{source}"
        with ThreadPoolExecutor(len(urls), thread_name_prefix=prefix) as pool:
            servers = list(pool.map(lambda url: self.config_file(url, domain), urls))
        for url, server in zip(urls, servers, strict=True):
            if server:
                return DetectedSettings(*server, source, url)
        return None

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
        if provider is None or not provider.smtp:
            return None
        return DetectedSettings(*provider.smtp, "provider", detail, provider)

    def config_file(self, url, domain):
        try:
            document = self.fetch(url)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self.note(f"GET {url}: {type(exc).__name__}: {exc}")
            return None
        try:
            return None if document is None else parse_client_config(document, domain)
        except (ElementTree.ParseError, ValueError) as exc:
            self.note(f"GET {url}: not a usable configuration file: {exc}")
            return None

    def fetch(self, url):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an HTTP URL: {url}")
        addresses = self.addresses(parts.hostname, f"GET {url}")
        if not addresses:
            return None
        tls = None
        if parts.scheme == "https":
            tls = verified_tls_context(self.options.cafile)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection = _AddressedConnection(
            self, parts.hostname, parts.port, addresses[0], self.step_wait(), tls
        )
        try:
            connection.request(
                "GET", path, headers={"User-Agent": _USER_AGENT, "Accept": "text/xml"}
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

    def from_probe(self, domain):
        provided = self.provider.probe_hosts if self.provider else ()
        usual = [t.format(domain=domain) for t in self.options.probe_hosts]
        hosts = list(dict.fromkeys([*provided, *usual]))
        combinations = list(dict.fromkeys(self.options.probe_combinations))
        addresses = {host: self.addresses(host, "probe") for host in hosts}
        jobs = [
            DetectedSettings(host, port, encryption, "probe", detail=host)
            for host in hosts
            if addresses[host]
            for port, encryption in combinations
        ]
        if not jobs:
            return None

        def rank(found):
            # Lower is better: verified TLS, then unverified TLS, then clear
            # text. A job not yet run ranks as verified, the best it can be.
            tier = (
                2 if found.encryption == "none" else 1 if found.certificate_error else 0
            )
            combination = combinations.index((found.port, found.encryption))
            return (tier, combination, hosts.index(found.host))

        best = None
        with ThreadPoolExecutor(
            max_workers=min(len(jobs), _MAX_PROBES),
            thread_name_prefix="smtp-engine-probe",
        ) as pool:
            pending = {pool.submit(self.probe, j, addresses[j.host]): j for j in jobs}
            with contextlib.suppress(concurrent.futures.TimeoutError):
                for future in as_completed(list(pending), self.deadline.remaining()):
                    del pending[future]
                    found = future.result()
                    if found and (best is None or rank(found) < rank(best)):
                        best = found
                    # Nothing still running can beat the best found: stop.
                    if best and all(rank(j) > rank(best) for j in pending.values()):
                        break
            pool.shutdown(wait=False, cancel_futures=True)
            self.stop()
        return best

    def probe(self, job, addresses):
        """``job`` if it answers at one of ``addresses``, with its certificate_error."""
        for address in addresses:
            try:
                try:
                    self.say_hello(job, address)
                except ssl.SSLCertVerificationError as exc:
                    if job.encryption == "ssl":
                        # The port speaks TLS; whether it speaks SMTP is seen
                        # over a second connection that does not verify.
                        self.say_hello(job, address, unverified_tls_context())
                    reason = exc.verify_message or str(exc)
                    return replace(job, certificate_error=reason)
                return job
            except (OSError, ValueError) as exc:
                self.note(
                    f"probe {job.host} [{address}]:{job.port} {job.encryption}: "
                    f"{type(exc).__name__}: {exc}"
                )
                if self.deadline.expired():
                    return None
        return None

    def say_hello(self, job, address, ssl_context=None):
        settings = SmtpSettings(
            job.host,
            job.port,
            job.encryption,
            cafile=self.options.cafile,
            local_hostname="localhost",  # not the machine's name: no system look-up
        )
        session = SmtpSession(
            settings,
            deadline=self.deadline,
            ssl_context=ssl_context,
            watchdog=self.watchdog(),
            address=address,
        )
        session.max_reply_lines = _MAX_REPLY_LINES
        try:
            establish(session)
            # Politeness only: the answer, or its absence, changes nothing.
            with contextlib.suppress(OSError):
                session.quit()
        finally:
            session.close()


class _AddressedConnection(http.client.HTTPConnection):
    """HTTP(S) to a host name at an address the run's resolver found."""

    def __init__(self, run, host, port, address, timeout, tls):
        super().__init__(host, port or (443 if tls else 80), timeout=timeout)
        self._address = address
        self._tls = tls
        self._run = run
        self._watchdog = run.watchdog()

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self._watchdog.arm(self.sock, self._run.deadline)
        if self._tls is not None:
            self.sock = self._tls.wrap_socket(self.sock, server_hostname=self.host)

    def close(self):
        try:
            return super().close()
        finally:
            self._watchdog.disarm()


def parse_client_config(document, domain=""):
    """``(host, port, encryption)`` of the SMTP server of a Thunderbird
    ``clientConfig`` 1.1 file; ValueError if it has none.

    The file lists servers by preference: the first that takes a password
    wins, else the first. ``%EMAILDOMAIN%`` is ``domain`` (the ISP database
    serves one file for all of a provider's domains); a host name with any
    other placeholder is not valid, so its server is skipped.
    """
    root = ElementTree.fromstring(document)
    if root.tag != "clientConfig":
        raise ValueError(f"root element is {root.tag}, not clientConfig")
    servers = []
    for server in root.iter("outgoingServer"):
        if server.get("type", "smtp") != "smtp":
            continue
        host = server.findtext("hostname", "").strip().lower()
        host = host.replace("%emaildomain%", domain)
        port = server.findtext("port", "").strip()
        port = int(port) if port.isdecimal() else 0
        encryption = _SOCKET_TYPES.get(
            server.findtext("socketType", "").strip().upper()
        )
        if not (is_valid_host(host) and 0 < port < 65536 and encryption):
            continue
        methods = {
            (a.text or "").strip().lower() for a in server.findall("authentication")
        }
        takes_password = not methods or bool(methods & _PASSWORD_AUTH)
        servers.append(((host, port, encryption), takes_password))
    if not servers:
        raise ValueError("no usable outgoing SMTP server")
    return next((s for s, password in servers if password), servers[0][0])
