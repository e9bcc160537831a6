"""Detection of an account's settings from its address, against loopback servers.

Every name is resolved by a loopback DNS server, every configuration file is
served by a loopback HTTP server, and the probe talks to loopback SMTP
servers that each support one combination of port and security.
"""

import contextlib
import socket
import time

import pytest

from smtp_engine.detect import (
    DetectOptions,
    address_domain,
    detect_settings,
    parse_client_config,
)
from smtp_engine.tests.detect_servers import (
    LoopbackDnsServer,
    LoopbackHttpServer,
    client_config,
    resolver_for,
)
from smtp_engine.tests.servers import (
    LoopbackSmtpServer,
    SilentServer,
    _SocketServer,
    refused_port,
)

EMAIL = "sales@example.test"
AUTOCONFIG_PATH = "/mail/config-v1.1.xml?emailaddress=sales@example.test"
WELL_KNOWN_PATH = "/.well-known/autoconfig/mail/config-v1.1.xml"


@pytest.fixture
def dns_server():
    with LoopbackDnsServer() as server:
        yield server


@pytest.fixture
def http_server():
    with LoopbackHttpServer() as server:
        yield server


@pytest.fixture
def options(dns_server, http_server, certs):
    """Options that look only at the loopback servers, the probe off."""

    def make(**values):
        port = http_server.port
        values.setdefault("resolver", resolver_for(dns_server))
        values.setdefault(
            "autoconfig_urls",
            (
                (
                    f"http://autoconfig.{{domain}}:{port}/mail/config-v1.1.xml"
                    "?emailaddress={email}"
                ),
                f"http://{{domain}}:{port}{WELL_KNOWN_PATH}",
            ),
        )
        values.setdefault("ispdb_url", f"http://ispdb.test:{port}/v1.1/{{domain}}")
        values.setdefault("probe_combinations", ())
        values.setdefault("cafile", str(certs.ca_cert))
        return DetectOptions(**values)

    return make


def serve_all_sources(dns_server, http_server):
    """Give every source a different answer, each naming its source."""
    dns_server.add("_submissions._tcp.example.test", "SRV", "0 1 465 srv.example.test.")
    for name in ("autoconfig.example.test", "example.test", "ispdb.test"):
        dns_server.add(name, "A", "127.0.0.1")
    http_server.documents[("autoconfig.example.test", AUTOCONFIG_PATH)] = client_config(
        "autoconfig.example.test", 587, "STARTTLS"
    )
    http_server.documents[("example.test", WELL_KNOWN_PATH)] = client_config(
        "well-known.example.test", 587, "STARTTLS"
    )
    http_server.documents[("ispdb.test", "/v1.1/example.test")] = client_config(
        "ispdb.example.test", 465, "SSL"
    )
    dns_server.add("example.test", "MX", "10 example-test.mail.protection.outlook.com.")


# -- each source alone -----------------------------------------------------------


def test_submissions_srv_record_gives_implicit_tls(dns_server, http_server, options):
    dns_server.add("_submissions._tcp.example.test", "SRV", "0 1 465 out.example.test.")

    found = detect_settings(EMAIL, 5, options()).settings

    assert (found.host, found.port, found.encryption) == (
        "out.example.test",
        465,
        "ssl",
    )
    assert (found.source, found.detail) == ("srv", "_submissions._tcp.example.test")
    assert http_server.requests == []


def test_submission_srv_record_gives_starttls(dns_server, options):
    dns_server.add("_submission._tcp.example.test", "SRV", "0 1 587 out.example.test.")

    found = detect_settings(EMAIL, 5, options()).settings

    assert (found.host, found.port, found.encryption, found.source) == (
        "out.example.test",
        587,
        "starttls",
        "srv",
    )


def test_srv_record_with_lowest_priority_wins(dns_server, options):
    dns_server.add(
        "_submission._tcp.example.test",
        "SRV",
        "20 1 587 backup.example.test.",
        "10 1 2587 main.example.test.",
    )

    found = detect_settings(EMAIL, 5, options()).settings

    assert (found.host, found.port) == ("main.example.test", 2587)


def test_srv_record_of_dot_says_no_service(dns_server, options):
    dns_server.add("_submissions._tcp.example.test", "SRV", "0 0 0 .")

    detection = detect_settings(EMAIL, 5, options())

    assert detection.settings is None


def test_autoconfig_file_at_the_autoconfig_host(dns_server, http_server, options):
    dns_server.add("autoconfig.example.test", "A", "127.0.0.1")
    http_server.documents[("autoconfig.example.test", AUTOCONFIG_PATH)] = client_config(
        "smtp.example.test", 587, "STARTTLS"
    )

    found = detect_settings(EMAIL, 5, options()).settings

    assert (found.host, found.port, found.encryption) == (
        "smtp.example.test",
        587,
        "starttls",
    )
    assert found.source == "autoconfig"
    assert found.detail.startswith("http://autoconfig.example.test:")


def test_autoconfig_file_at_the_well_known_path(dns_server, http_server, options):
    dns_server.add("example.test", "A", "127.0.0.1")
    http_server.documents[("example.test", WELL_KNOWN_PATH)] = client_config(
        "%EMAILDOMAIN%", 465, "SSL"
    )

    found = detect_settings(EMAIL, 5, options()).settings

    assert (found.host, found.port, found.encryption) == ("example.test", 465, "ssl")
    assert found.source == "autoconfig"
    assert found.detail.endswith(WELL_KNOWN_PATH)


def test_isp_database(dns_server, http_server, options):
    dns_server.add("ispdb.test", "A", "127.0.0.1")
    http_server.documents[("ispdb.test", "/v1.1/example.test")] = client_config(
        "mail.isp.test", 465, "SSL"
    )

    found = detect_settings(EMAIL, 5, options()).settings

    assert (found.host, found.port, found.encryption) == ("mail.isp.test", 465, "ssl")
    assert found.source == "ispdb"
    assert ("ispdb.test", "/v1.1/example.test") in http_server.requests


def test_isp_database_names_the_address_domain_in_its_hosts(
    dns_server, http_server, options
):
    dns_server.add("ispdb.test", "A", "127.0.0.1")
    http_server.documents[("ispdb.test", "/v1.1/example.test")] = client_config(
        "smtp.%EMAILDOMAIN%", 587, "STARTTLS"
    )

    found = detect_settings(EMAIL, 5, options()).settings

    assert (found.host, found.port) == ("smtp.example.test", 587)


def test_mx_of_a_known_provider_gives_its_settings_and_note(dns_server, options):
    dns_server.add("example.test", "MX", "10 example-test.mail.protection.outlook.com.")

    detection = detect_settings(EMAIL, 5, options())

    found = detection.settings
    assert (found.host, found.port, found.encryption) == (
        "smtp.office365.com",
        587,
        "starttls",
    )
    assert found.source == "provider"
    assert found.provider.key == "microsoft365"
    assert "SMTP AUTH" in detection.describe()
    assert "MX example-test.mail.protection.outlook.com" in detection.describe()


def test_address_of_a_known_provider_gives_its_settings(options):
    detection = detect_settings("someone@gmail.com", 5, options())

    found = detection.settings
    assert (found.host, found.port, found.encryption, found.source) == (
        "smtp.gmail.com",
        465,
        "ssl",
        "provider",
    )
    assert "app password" in detection.describe()


def test_provider_note_follows_its_host_from_any_source(dns_server, options):
    dns_server.add(
        "_submission._tcp.example.test", "SRV", "0 1 587 smtp.office365.com."
    )

    detection = detect_settings(EMAIL, 5, options())

    assert detection.settings.source == "srv"
    assert "SMTP AUTH" in detection.describe()


def test_nothing_found_says_so(options):
    detection = detect_settings(EMAIL, 5, options())

    assert detection.settings is None
    assert "No settings were found for example.test" in detection.describe()


# -- the order -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("removed", "expected"),
    [
        (0, ("srv.example.test", "srv")),
        (1, ("autoconfig.example.test", "autoconfig")),
        (2, ("well-known.example.test", "autoconfig")),
        (3, ("ispdb.example.test", "ispdb")),
        (4, ("smtp.office365.com", "provider")),
    ],
)
def test_sources_are_tried_in_the_mail_clients_order(
    dns_server, http_server, options, removed, expected
):
    serve_all_sources(dns_server, http_server)
    removals = [
        lambda: (
            dns_server.records.clear()
            or dns_server.add("autoconfig.example.test", "A", "127.0.0.1")
            or dns_server.add("example.test", "A", "127.0.0.1")
            or dns_server.add("ispdb.test", "A", "127.0.0.1")
            or dns_server.add(
                "example.test", "MX", "10 example-test.mail.protection.outlook.com."
            )
        ),
        lambda: http_server.documents.pop(("autoconfig.example.test", AUTOCONFIG_PATH)),
        lambda: http_server.documents.pop(("example.test", WELL_KNOWN_PATH)),
        lambda: http_server.documents.pop(("ispdb.test", "/v1.1/example.test")),
    ]
    for remove in removals[:removed]:
        remove()

    found = detect_settings(EMAIL, 5, options()).settings

    assert (found.host, found.source) == expected


# -- the probe ---------------------------------------------------------------------


@pytest.fixture
def probe_servers(certs):
    """One server for each combination: SSL/TLS, STARTTLS, clear text."""
    with (
        LoopbackSmtpServer(tls="ssl", certs=certs) as ssl_server,
        LoopbackSmtpServer(tls="starttls", certs=certs) as starttls_server,
        LoopbackSmtpServer() as plain_server,
    ):
        yield ssl_server, starttls_server, plain_server


def usual_combinations(ssl_port, starttls_port, plain_port):
    """The usual combinations, with these ports for 465, 587 and 25."""
    return (
        (ssl_port, "ssl"),
        (starttls_port, "starttls"),
        (plain_port, "starttls"),
        (plain_port, "none"),
    )


@pytest.fixture
def probe_options(dns_server, options):
    dns_server.add("localhost", "A", "127.0.0.1")
    dns_server.add("smtp.example.test", "A", "127.0.0.1")

    def make(combinations, hosts=("localhost",)):
        return options(probe_combinations=combinations, probe_hosts=hosts)

    return make


def test_probe_proposes_implicit_tls_first(probe_servers, probe_options):
    ssl_server, starttls_server, plain_server = probe_servers
    combinations = usual_combinations(
        ssl_server.port, starttls_server.port, plain_server.port
    )

    found = detect_settings(EMAIL, 5, probe_options(combinations)).settings

    assert (found.host, found.port, found.encryption) == (
        "localhost",
        ssl_server.port,
        "ssl",
    )
    assert (found.source, found.certificate_error) == ("probe", "")


def test_probe_finds_starttls_when_only_it_answers(probe_servers, probe_options):
    _ssl, starttls_server, _plain = probe_servers
    combinations = usual_combinations(
        refused_port(), starttls_server.port, refused_port()
    )

    found = detect_settings(EMAIL, 5, probe_options(combinations)).settings

    assert (found.port, found.encryption) == (starttls_server.port, "starttls")


def test_probe_finds_clear_text_when_only_it_answers(probe_servers, probe_options):
    _ssl, _starttls, plain_server = probe_servers
    combinations = usual_combinations(refused_port(), refused_port(), plain_server.port)

    found = detect_settings(EMAIL, 5, probe_options(combinations)).settings

    # The clear-text server offers no STARTTLS: port "25" with STARTTLS fails.
    assert (found.port, found.encryption) == (plain_server.port, "none")


def test_probe_does_not_take_tls_on_a_clear_text_port(probe_servers, probe_options):
    _ssl, _starttls, plain_server = probe_servers
    combinations = ((plain_server.port, "ssl"), (plain_server.port, "starttls"))

    detection = detect_settings(EMAIL, 5, probe_options(combinations))

    assert detection.settings is None


def test_probe_puts_an_unverified_certificate_second(certs, probe_options):
    with (
        LoopbackSmtpServer(tls="ssl", certs=certs, cert="self_signed") as ssl_server,
        LoopbackSmtpServer(tls="starttls", certs=certs) as starttls_server,
    ):
        combinations = ((ssl_server.port, "ssl"), (starttls_server.port, "starttls"))

        found = detect_settings(EMAIL, 5, probe_options(combinations)).settings

    assert (found.port, found.encryption) == (starttls_server.port, "starttls")
    assert found.certificate_error == ""


def test_probe_reports_an_unverified_certificate(certs, probe_options):
    with LoopbackSmtpServer(tls="ssl", certs=certs, cert="self_signed") as server:
        combinations = ((server.port, "ssl"),)

        detection = detect_settings(EMAIL, 5, probe_options(combinations))

    assert (detection.settings.port, detection.settings.encryption) == (
        server.port,
        "ssl",
    )
    assert detection.settings.certificate_error
    assert "could not be verified" in detection.describe()


def test_probe_of_another_host_name_sees_the_certificate_mismatch(
    probe_servers, probe_options
):
    _ssl, starttls_server, _plain = probe_servers
    combinations = ((starttls_server.port, "starttls"),)

    found = detect_settings(
        EMAIL, 5, probe_options(combinations, hosts=("smtp.{domain}",))
    ).settings

    assert found.host == "smtp.example.test"
    assert "mismatch" in found.certificate_error.lower()


class RecordingServer(_SocketServer):
    """Clear-text SMTP that offers AUTH and records every line it receives."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def _serve(self, client):
        client.settimeout(5)
        with client.makefile("rb") as stream:
            client.sendall(b"220 recording\r\n")
            for raw in stream:
                line = raw.decode().rstrip("\r\n")
                self.lines.append(line)
                if line.upper().startswith("EHLO"):
                    client.sendall(b"250-recording\r\n250 AUTH PLAIN LOGIN\r\n")
                elif line.upper() == "QUIT":
                    client.sendall(b"221 bye\r\n")
                    return
                else:
                    client.sendall(b"502 no\r\n")


def test_probe_sends_no_credentials(probe_options):
    with RecordingServer() as server:
        combinations = ((server.port, "none"),)

        found = detect_settings(EMAIL, 5, probe_options(combinations)).settings

        assert found.encryption == "none"
        assert [line.upper() for line in server.lines] == ["EHLO LOCALHOST", "QUIT"]


def test_probe_skips_hosts_that_do_not_resolve(probe_servers, probe_options):
    ssl_server, _starttls, _plain = probe_servers
    combinations = ((ssl_server.port, "ssl"),)

    found = detect_settings(
        EMAIL,
        5,
        probe_options(combinations, hosts=("nowhere.example.test", "localhost")),
    ).settings

    assert found.host == "localhost"


def test_whole_detection_keeps_the_deadline(dns_server, http_server, probe_options):
    dns_server.add("autoconfig.example.test", "A", "127.0.0.1")
    with SilentServer() as silent:
        combinations = ((silent.port, "ssl"), (silent.port, "starttls"))

        started = time.monotonic()
        detection = detect_settings(EMAIL, 1.5, probe_options(combinations))
        elapsed = time.monotonic() - started

    assert detection.settings is None
    assert elapsed < 2.0


def test_probe_stops_once_nothing_can_beat_the_best(probe_servers, probe_options):
    ssl_server, _starttls, _plain = probe_servers
    with SilentServer() as silent:
        combinations = ((ssl_server.port, "ssl"), (silent.port, "starttls"))

        started = time.monotonic()
        found = detect_settings(EMAIL, 10, probe_options(combinations)).settings
        elapsed = time.monotonic() - started

    assert found.port == ssl_server.port
    assert elapsed < 3


@contextlib.contextmanager
def unanswered_port():
    """A loopback port where a connect gets no answer: its queue is full."""
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        for _ in range(3):
            queued = stack.enter_context(socket.socket())
            queued.setblocking(False)
            queued.connect_ex(address)
        check = stack.enter_context(socket.socket())
        check.settimeout(0.2)
        with pytest.raises(TimeoutError):
            check.connect(address)
        yield address[1]


def test_probe_stops_connecting_once_nothing_can_beat_the_best(
    probe_servers, probe_options
):
    ssl_server, _starttls, _plain = probe_servers
    with unanswered_port() as port:
        combinations = ((ssl_server.port, "ssl"), (port, "starttls"))

        started = time.monotonic()
        found = detect_settings(EMAIL, 10, probe_options(combinations)).settings
        elapsed = time.monotonic() - started

    assert found.port == ssl_server.port
    assert elapsed < 3


# -- the pieces --------------------------------------------------------------------


def test_client_config_prefers_a_server_that_takes_a_password():
    document = """<clientConfig version="1.1"><emailProvider id="x">
      <outgoingServer type="smtp"><hostname>oauth.example.test</hostname>
        <port>587</port><socketType>STARTTLS</socketType>
        <authentication>OAuth2</authentication></outgoingServer>
      <outgoingServer type="smtp"><hostname>smtp.example.test</hostname>
        <port>465</port><socketType>SSL</socketType>
        <authentication>password-cleartext</authentication></outgoingServer>
    </emailProvider></clientConfig>"""

    assert parse_client_config(document) == ("smtp.example.test", 465, "ssl")


def test_client_config_without_smtp_server_is_refused():
    with pytest.raises(ValueError):
        parse_client_config("<clientConfig><emailProvider/></clientConfig>")


def test_address_domain_is_given_in_idna_form():
    assert address_domain("info@παράδειγμα.ελ") == "xn--hxajbheg2az3al.xn--qxam"


def test_address_without_a_domain_is_refused():
    with pytest.raises(ValueError):
        address_domain("sales")
