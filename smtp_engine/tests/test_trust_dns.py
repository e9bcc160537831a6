"""SPF and DMARC look-ups of the sender domain, against a loopback DNS server."""

import pytest

from smtp_engine.tests.dns_server import LoopbackDnsServer
from smtp_engine.trust_dns import (
    check_sender_domain,
    make_resolver,
    sender_domain_report,
)

ZONE = """
allowed.test.            300 IN TXT "v=spf1 ip4:127.0.0.0/8 ip6:::1 -all"
_dmarc.allowed.test.     300 IN TXT "v=DMARC1; p=reject; rua=mailto:d@allowed.test"
refused.test.            300 IN TXT "v=spf1 ip4:192.0.2.1 -all"
_dmarc.refused.test.     300 IN TXT "v=DMARC1; p=none"
soft.test.               300 IN TXT "v=spf1 ip4:192.0.2.1 ~all"
soft.test.               300 IN TXT "google-site-verification=abc"
included.test.           300 IN TXT "v=spf1 include:_spf.provider.test -all"
_spf.provider.test.      300 IN TXT "v=spf1 a:smtp.provider.test mx -all"
smtp.provider.test.      300 IN A   127.0.0.1
redirected.test.         300 IN TXT "v=spf1 redirect=_spf.provider.test"
provider.test.           300 IN MX  10 mx.provider.test.
mx.provider.test.        300 IN A   192.0.2.25
twice.test.              300 IN TXT "v=spf1 -all"
twice.test.              300 IN TXT "v=spf1 +all"
nothing.test.            300 IN A   192.0.2.80
mail.sub.allowed.test.   300 IN A   127.0.0.1
"""


@pytest.fixture(scope="module")
def dns():
    with LoopbackDnsServer(ZONE) as server:
        yield server


@pytest.fixture
def resolver(dns):
    return make_resolver(dns.address, timeout=2)


def keys(report):
    return [(finding.level, finding.key) for finding in report.findings]


def test_domain_that_allows_the_server_and_enforces_dmarc(resolver):
    report = check_sender_domain("me@allowed.test", "127.0.0.1", resolver=resolver)

    assert keys(report) == [("ok", "spf_host_allowed"), ("ok", "dmarc_enforced")]
    assert report.spf_results == {"127.0.0.1": "pass"}
    assert report.dmarc_policy == "reject"


def test_spf_that_refuses_the_server_and_dmarc_that_only_monitors(resolver):
    report = check_sender_domain("me@refused.test", "127.0.0.1", resolver=resolver)

    assert keys(report) == [
        ("problem", "spf_host_refused"),
        ("warning", "dmarc_monitoring"),
    ]


def test_softfail_is_unclear_and_no_dmarc_is_a_problem(resolver):
    report = check_sender_domain("me@soft.test", "127.0.0.1", resolver=resolver)

    assert keys(report) == [
        ("warning", "spf_host_unclear"),
        ("problem", "dmarc_missing"),
    ]
    assert report.findings[0].params["result"] == "softfail"


def test_server_allowed_through_an_include(resolver):
    report = check_sender_domain("me@included.test", "127.0.0.1", resolver=resolver)

    assert report.spf_results == {"127.0.0.1": "pass"}


def test_redirect_is_followed(resolver):
    report = check_sender_domain("me@redirected.test", "127.0.0.1", resolver=resolver)

    assert report.spf_results == {"127.0.0.1": "pass"}


def test_server_known_only_to_the_system_resolver_is_checked(resolver):
    # "localhost" is in /etc/hosts (maybe as ::1 too), not in DNS: sending
    # finds it there.
    report = check_sender_domain("me@allowed.test", "localhost", resolver=resolver)

    assert keys(report)[0] == ("ok", "spf_host_allowed")
    assert "127.0.0.1" in report.findings[0].text()


def test_server_whose_addresses_cannot_be_found_is_said_so(resolver):
    # A label longer than 63 characters: refused before any look-up.
    host = "x" * 64 + ".example"

    report = check_sender_domain("me@allowed.test", host, resolver=resolver)

    assert keys(report)[0] == ("warning", "spf_host_unresolved")
    assert report.findings[0].text() == (
        f"The addresses of the SMTP server {host} could not be found: whether "
        "the SPF record of allowed.test allows it was not checked."
    )


def test_two_spf_records_are_invalid(resolver):
    report = check_sender_domain("me@twice.test", "127.0.0.1", resolver=resolver)

    assert keys(report)[0] == ("problem", "spf_invalid")


def test_domain_without_records(resolver):
    report = check_sender_domain("me@nothing.test", "127.0.0.1", resolver=resolver)

    assert keys(report) == [("problem", "spf_missing"), ("problem", "dmarc_missing")]
    assert report.level == "problem"


def test_dmarc_missing_hint_names_the_domain_and_the_receivers(resolver):
    report = check_sender_domain("me@nothing.test", "127.0.0.1", resolver=resolver)

    assert report.findings[1].text() == (
        "Your domain nothing.test publishes no DMARC policy: Gmail and Yahoo "
        "refuse bulk mail without one. Publish at least “v=DMARC1; p=none” "
        "at _dmarc.nothing.test."
    )


def test_subdomain_uses_the_policy_of_its_organizational_domain(resolver):
    report = check_sender_domain("me@sub.allowed.test", "127.0.0.1", resolver=resolver)

    assert report.dmarc_policy == "reject"


def test_unreachable_resolver_is_a_warning_not_an_error():
    from smtp_engine.tests.servers import free_port

    resolver = make_resolver(f"127.0.0.1:{free_port()}", timeout=0.5)

    report = check_sender_domain("me@allowed.test", "127.0.0.1", resolver=resolver)

    assert keys(report) == [("warning", "dns_failed")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("[::1]:53", ("::1", 53)),
        ("::1", ("::1", 53)),
        ("192.0.2.53", ("192.0.2.53", 53)),
    ],
)
def test_resolver_server_setting(text, expected):
    resolver = make_resolver(text)

    assert (resolver.nameservers[0], resolver.port) == expected


def test_resolver_server_must_be_an_address():
    with pytest.raises(ValueError):
        make_resolver("dns.example.com")


def test_malformed_resolver_setting_is_a_warning_not_an_error():
    report = sender_domain_report("me@allowed.test", "127.0.0.1", nameserver="dns")

    assert keys(report) == [("warning", "dns_failed")]
