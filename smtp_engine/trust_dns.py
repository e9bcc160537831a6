"""Will receivers trust the account's mail? Its domain's SPF and DMARC records."""

import ipaddress
import re
import urllib.parse
from dataclasses import dataclass, field

import dns.exception
import dns.resolver

from .connection import Deadline, normalize_host, resolve
from .texts import _lt, render, untranslated

# Levels of a finding, from good to bad.
OK, WARNING, PROBLEM = "ok", "warning", "problem"
_MAX_LOOKUPS = 10
_QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
_MECHANISM = re.compile(
    r"^(?P<qualifier>[+\-~?]?)(?P<name>all|include|a|mx|ptr|ip4|ip6|exists)"
    r"(?::(?P<target>[^/]+))?(?P<cidr>/.*)?$",
    re.IGNORECASE,
)
_MODIFIER = re.compile(r"^(?P<name>[a-z][a-z0-9_.-]*)=(?P<value>.*)$", re.IGNORECASE)
_DMARC_POLICIES = ("none", "quarantine", "reject")

DNS_HINTS = {
    "spf_missing": _lt(
        "Your domain %(domain)s publishes no SPF record: receivers cannot tell "
        "which servers may send its mail, and many file it as spam. Publish "
        "the SPF record your provider documents."
    ),
    "spf_invalid": _lt(
        "The SPF record of your domain %(domain)s cannot be used "
        "(%(error)s): receivers treat its mail as unauthenticated. Publish "
        "one valid SPF record."
    ),
    "spf_host_allowed": _lt(
        "The SPF record of %(domain)s allows the SMTP server %(host)s (%(addresses)s)."
    ),
    "spf_host_refused": _lt(
        "The SPF record of %(domain)s does not allow the SMTP server %(host)s "
        "(%(addresses)s): receivers may refuse its mail. Add what your "
        "provider documents (usually an “include:”) to the record."
    ),
    "spf_host_unclear": _lt(
        "The SPF record of %(domain)s does not clearly allow the SMTP server "
        "%(host)s (%(addresses)s, result “%(result)s”): receivers may file its "
        "mail as spam. Add what your provider documents to the record."
    ),
    "spf_host_unresolved": _lt(
        "The addresses of the SMTP server %(host)s could not be found: whether "
        "the SPF record of %(domain)s allows it was not checked."
    ),
    "dmarc_missing": _lt(
        "Your domain %(domain)s publishes no DMARC policy: Gmail and Yahoo "
        "refuse bulk mail without one. Publish at least “v=DMARC1; p=none” "
        "at _dmarc.%(domain)s."
    ),
    "dmarc_monitoring": _lt(
        "The DMARC policy of %(domain)s is “none”: receivers deliver mail that "
        "fails it, forged mail included. Once SPF and DKIM pass, move to "
        "“quarantine” or “reject”."
    ),
    "dmarc_enforced": _lt(
        "The DMARC policy of %(domain)s is “%(policy)s”: receivers set aside "
        "mail that forges the domain."
    ),
    "dns_failed": _lt(
        "The DNS records of %(domain)s could not be looked up (%(error)s): "
        "its SPF and DMARC records were not checked."
    ),
}


@dataclass(frozen=True)
class Finding:
    """One thing the look-up found: its level, hint key and parameters."""

    level: str
    key: str
    params: dict = field(default_factory=dict)

    def text(self, translate=untranslated):
        return render(DNS_HINTS[self.key], translate, self.params)


@dataclass
class SenderDomainReport:
    """What the sender domain publishes, and what it means for the account."""

    domain: str
    spf_results: dict = field(default_factory=dict)
    dmarc_record: str = ""
    dmarc_policy: str = ""
    findings: list = field(default_factory=list)

    @property
    def level(self):
        """The worst level of the findings ("ok" if none)."""
        levels = {finding.level for finding in self.findings}
        return next((level for level in (PROBLEM, WARNING) if level in levels), OK)


def nameserver_resolver(entries):
    """Return a resolver asking only ``entries``, all on the port of the first.

    Each is an address with an optional port: ``127.0.0.1:5353``, ``[::1]:53``.
    """
    servers = [_split_server(entry) for entry in entries]
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host for host, _port in servers]
    resolver.port = servers[0][1]
    return resolver


def make_resolver(nameserver=None, timeout=5.0):
    """Return a resolver asking ``nameserver``, or the system's servers."""
    # dnspython, unlike the system library, lets a caller choose the server
    # to ask: tests stay on loopback.
    if nameserver:
        resolver = nameserver_resolver([nameserver])
    else:
        resolver = dns.resolver.Resolver()
    resolver.timeout = resolver.lifetime = timeout
    return resolver


def records(resolver, name, rdtype, lifetime=None):
    """Return the records of ``name``: none when it has none or is unknown."""
    try:
        answer = resolver.resolve(
            name, rdtype, lifetime=lifetime, search=False, raise_on_no_answer=False
        )
    except dns.resolver.NXDOMAIN:
        return []
    return list(answer)


def _split_server(text):
    text = text.strip()
    try:
        return str(ipaddress.ip_address(text)), 53
    except ValueError:
        parts = urllib.parse.urlsplit(f"//{text}")  # host:port, [v6]:port
    port = 53 if parts.port is None else parts.port
    if not 0 < port < 65536:
        raise ValueError(f"port must be between 1 and 65535, not {port}")
    return str(ipaddress.ip_address(parts.hostname or "")), port


class _Lookups:
    """The DNS questions of one check, with their RFC 7208 budget."""

    def __init__(self, resolver):
        self.resolver = resolver
        self.count = 0

    def charge(self):
        self.count += 1
        if self.count > _MAX_LOOKUPS:
            raise ValueError("more than 10 DNS look-ups")

    def query(self, name, rdtype):
        return records(self.resolver, name, rdtype)

    def txt(self, name):
        return [
            b"".join(rdata.strings).decode("utf-8", "replace")
            for rdata in self.query(name, "TXT")
        ]

    def addresses(self, name):
        return [
            ipaddress.ip_address(rdata.address)
            for rdtype in ("A", "AAAA")
            for rdata in self.query(name, rdtype)
        ]


def _spf_records(lookups, domain):
    return [
        record
        for record in lookups.txt(domain)
        if record.lower() == "v=spf1" or record.lower().startswith("v=spf1 ")
    ]


def _in_network(ip, addresses, cidr):
    four, _sep, six = (cidr or "").partition("//")
    bits = (six if ip.version == 6 else four.lstrip("/")) or ip.max_prefixlen
    return any(
        ip in ipaddress.ip_network(f"{address}/{bits}", strict=False)
        for address in addresses
        if address.version == ip.version
    )


def _mechanism_matches(lookups, ip, domain, name, target, cidr):
    target = target or domain
    if "%" in target:
        # Macros (RFC 7208 section 7) are not expanded: no match.
        return False
    if name == "all":
        return True
    if name in ("ip4", "ip6"):
        network = ipaddress.ip_network(f"{target}{cidr or ''}", strict=False)
        return ip.version == network.version and ip in network
    lookups.charge()
    if name == "a":
        return _in_network(ip, lookups.addresses(target), cidr)
    if name == "mx":
        hosts = [str(rdata.exchange) for rdata in lookups.query(target, "MX")]
        return any(_in_network(ip, lookups.addresses(host), cidr) for host in hosts)
    if name == "exists":
        return bool(lookups.query(target, "A"))
    if name == "include":
        return _check_host(lookups, ip, target, f"include:{target}") == "pass"
    return False  # ptr: deprecated, never matches here


def _check_host(lookups, ip, domain, referrer=""):
    """Return the SPF result of ``ip`` for ``domain`` (RFC 7208 check_host).

    A record that cannot be evaluated raises ``ValueError`` (a permerror), as
    does no record at all where the ``referrer`` term (include, redirect)
    leads; a look-up that fails raises dnspython's ``DNSException``.
    """
    records = _spf_records(lookups, domain)
    if referrer and not records:
        raise ValueError(f"{referrer} has no SPF record")
    if not records:
        return "none"
    if len(records) > 1:
        raise ValueError("more than one SPF record")
    redirect = None
    for term in records[0].split()[1:]:
        match = _MECHANISM.match(term)
        if match:
            name, target, cidr = match["name"].lower(), match["target"], match["cidr"]
            if _mechanism_matches(lookups, ip, domain, name, target, cidr):
                return _QUALIFIERS[match["qualifier"] or "+"]
            continue
        modifier = _MODIFIER.match(term)
        if not modifier:
            raise ValueError(f"unknown term “{term}”")
        if modifier["name"].lower() == "redirect":
            redirect = modifier["value"]
    if redirect:
        lookups.charge()
        return _check_host(lookups, ip, redirect, f"redirect={redirect}")
    return "neutral"


def spf_result(lookups, ip, domain):
    """Return the SPF result of ``ip`` for ``domain``; a failed look-up raises."""
    lookups.count = 0
    try:
        return _check_host(lookups, ip, domain)
    except ValueError:
        return "permerror"


def _host_addresses(host, timeout):
    """Return the addresses of ``host`` as sending finds them (``/etc/hosts`` too)."""
    try:
        found = resolve(normalize_host(host), None, Deadline(timeout))
    except (OSError, ValueError):
        return []
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in found))


def _dmarc(lookups, domain):
    # The organizational domain, without the public suffix list: right for
    # the usual name.tld and sub.name.tld.
    for candidate in dict.fromkeys([domain, ".".join(domain.split(".")[-2:])]):
        records = [
            record
            for record in lookups.txt(f"_dmarc.{candidate}")
            if record.replace(" ", "").lower().startswith("v=dmarc1")
        ]
        if len(records) == 1:
            tags = {}
            for part in records[0].split(";"):
                key, _sep, value = part.partition("=")
                tags.setdefault(key.strip().lower(), value.strip())
            policy = tags.get("p", "").lower()
            if candidate != domain:
                policy = tags.get("sp", policy).lower()
            return records[0], policy if policy in _DMARC_POLICIES else ""
    return "", ""


def _domain_of(sender_email):
    return (sender_email or "").rpartition("@")[2].strip().rstrip(".").lower()


def _dns_failed(domain, error):
    error = str(error) or type(error).__name__
    return Finding(WARNING, "dns_failed", {"domain": domain, "error": error})


def check_sender_domain(sender_email, smtp_host, *, resolver):
    """Return the ``SenderDomainReport`` of the domain of ``sender_email``.

    ``resolver`` is a dnspython resolver (see ``make_resolver``). Network
    problems never raise: they become a "dns_failed" finding.
    """
    report = SenderDomainReport(domain=_domain_of(sender_email))
    lookups = _Lookups(resolver)
    try:
        report.findings.append(_spf_finding(report, lookups, smtp_host))
        report.dmarc_record, report.dmarc_policy = _dmarc(lookups, report.domain)
    except dns.exception.DNSException as exc:
        report.findings = [_dns_failed(report.domain, exc)]
        return report
    params = {"domain": report.domain, "policy": report.dmarc_policy}
    if not report.dmarc_record:
        report.findings.append(Finding(PROBLEM, "dmarc_missing", params))
    elif report.dmarc_policy in ("quarantine", "reject"):
        report.findings.append(Finding(OK, "dmarc_enforced", params))
    else:
        report.findings.append(Finding(WARNING, "dmarc_monitoring", params))
    return report


def _spf_finding(report, lookups, smtp_host):
    domain = report.domain
    records = _spf_records(lookups, domain)
    if not records:
        return Finding(PROBLEM, "spf_missing", {"domain": domain})
    if len(records) > 1:
        error = "more than one SPF record"
        return Finding(PROBLEM, "spf_invalid", {"domain": domain, "error": error})
    params = {"domain": domain, "host": smtp_host}
    addresses = _host_addresses(smtp_host, lookups.resolver.lifetime)
    if not addresses:
        return Finding(WARNING, "spf_host_unresolved", params)
    report.spf_results = {str(ip): spf_result(lookups, ip, domain) for ip in addresses}
    results = set(report.spf_results.values())
    params["addresses"] = ", ".join(report.spf_results)
    if "permerror" in results:
        return Finding(PROBLEM, "spf_invalid", {"domain": domain, "error": "permerror"})
    if results == {"pass"}:
        return Finding(OK, "spf_host_allowed", params)
    if "fail" in results:
        return Finding(PROBLEM, "spf_host_refused", params)
    worst = "softfail" if "softfail" in results else "neutral"
    return Finding(WARNING, "spf_host_unclear", {**params, "result": worst})


def sender_domain_report(sender_email, smtp_host, *, nameserver=None, timeout=5.0):
    """``check_sender_domain`` with a resolver for ``nameserver``.

    A resolver that cannot be set up (a malformed ``nameserver``, no system
    resolver configuration) gives a "dns_failed" finding, never an error.
    """
    try:
        resolver = make_resolver(nameserver, timeout)
    except (ValueError, dns.exception.DNSException) as exc:
        domain = _domain_of(sender_email)
        return SenderDomainReport(domain, findings=[_dns_failed(domain, exc)])
    return check_sender_domain(sender_email, smtp_host, resolver=resolver)
