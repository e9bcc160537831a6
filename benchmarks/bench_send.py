#!/usr/bin/env python3
"""Time the SMTP engine against plain smtplib, side by side, on loopback.

One ``LoopbackSmtpServer`` per mode (plain SMTP, then STARTTLS with AUTH and
the test certificates) receives, in interleaved rounds, one message from each
of four clients:

    (a) engine    send_test_message: compose, connect, send, quit
        smtplib   compose an equivalent message, connect, [starttls, login],
                  send_message, quit
    (c) engine    open_connection, send_message, quit (real sending)
        smtplib   connect, [starttls, login], send_message, quit

The (c) clients send the same message, composed once. The order of the
clients turns with every round, so that drift of the machine falls on all of
them alike. Printed: median and 95th percentile per message, the ratio
engine/smtplib, and where the time of (a) goes.

    python3 benchmarks/bench_send.py [--count 200]
"""

import argparse
import email.policy
import email.utils
import math
import smtplib
import socket
import ssl
import statistics
import sys
import tempfile
import time
from email.message import EmailMessage

from _common import fail_on_threads_left, running_threads

from smtp_engine import (
    SmtpSettings,
    compose_test_message,
    open_connection,
    send_test_message,
)
from smtp_engine.connection import tls_context
from smtp_engine.tests.servers import (
    LoopbackSmtpServer,
    make_test_certificates,
)

ACCOUNT = "Benchmark account"
SENDER_NAME = "Bench Sender"
SENDER = "bench@example.com"
LOGIN = "bench"
PASSWORD = "bench-secret"
TIMEOUT = 10.0
CLIENTS = ("engine_test", "smtplib_test", "engine_open", "smtplib_open")


def percentile(values, fraction):
    """Return the nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


class Mode:
    """One server set-up and the settings of both clients for it."""

    def __init__(self, name, server, settings, context):
        self.name = name
        self.server = server
        self.settings = settings
        # smtplib's side: one TLS context for the whole run, as a script
        # that sends many messages would keep it.
        self.context = context
        # Computed once: smtplib would otherwise look up the machine's name
        # on every connection, which the engine does only once per process.
        self.local_hostname = socket.getfqdn()
        sample = compose_test_message(settings, ACCOUNT)
        self.subject = str(sample["Subject"])
        self.text = sample.get_body(("plain",)).get_content()
        self.html = sample.get_body(("html",)).get_content()
        # The message of the (c) clients, composed once.
        self.message = sample


def compose_plain(mode):
    """Compose, with the email package alone, a message like the engine's."""
    message = EmailMessage()
    message["From"] = email.utils.formataddr((SENDER_NAME, SENDER))
    message["To"] = message["From"]
    message["Date"] = email.utils.localtime()
    message["Message-ID"] = email.utils.make_msgid(domain="example.com")
    message["Subject"] = mode.subject
    message["X-Email-Account-Test"] = "1"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(mode.text)
    message.add_alternative(mode.html, subtype="html")
    return message


def smtplib_send(mode, message):
    """Send ``message`` with smtplib alone, on a connection of its own."""
    settings = mode.settings
    client = smtplib.SMTP(
        settings.host,
        settings.port,
        local_hostname=mode.local_hostname,
        timeout=settings.timeout,
    )
    try:
        if settings.encryption == "starttls":
            client.starttls(context=mode.context)
        if settings.auth_required:
            client.login(settings.username, settings.password)
        client.send_message(message)
        client.quit()
    finally:
        client.close()


def run_client(name, mode, samples):
    """Send one message with client ``name``; add its timings to ``samples``."""
    settings = mode.settings
    if name == "engine_test":
        started = time.perf_counter()
        result = send_test_message(settings, ACCOUNT)
        samples["engine_test"].append(time.perf_counter() - started)
        if not result.ok:
            raise SystemExit(f"engine failed: {result.error}\n{result.transcript}")
        # The split of the engine's time, measured beside the send: the same
        # composition, and the TLS context that each connection builds.
        started = time.perf_counter()
        compose_test_message(settings, ACCOUNT)
        samples["engine_compose"].append(time.perf_counter() - started)
        if settings.encryption != "none":
            started = time.perf_counter()
            tls_context(settings)
            samples["engine_context"].append(time.perf_counter() - started)
    elif name == "smtplib_test":
        started = time.perf_counter()
        message = compose_plain(mode)
        composed = time.perf_counter()
        smtplib_send(mode, message)
        ended = time.perf_counter()
        samples["smtplib_test"].append(ended - started)
        samples["smtplib_compose"].append(composed - started)
    elif name == "engine_open":
        started = time.perf_counter()
        session = open_connection(settings)
        try:
            session.send_message(mode.message)
            session.quit()
        finally:
            session.close()
        samples["engine_open"].append(time.perf_counter() - started)
    else:
        started = time.perf_counter()
        smtplib_send(mode, mode.message)
        samples["smtplib_open"].append(time.perf_counter() - started)


def run_mode(mode, count, warmup):
    """Run ``warmup`` then ``count`` interleaved rounds; return the samples."""
    samples = {
        key: []
        for key in (
            *CLIENTS,
            "engine_compose",
            "engine_context",
            "smtplib_compose",
        )
    }
    for _ in range(warmup):
        for name in CLIENTS:
            run_client(name, mode, {key: [] for key in samples})
    for index in range(count):
        shift = index % len(CLIENTS)
        for name in CLIENTS[shift:] + CLIENTS[:shift]:
            run_client(name, mode, samples)
    expected = (warmup + count) * len(CLIENTS)
    received = len(mode.server.messages)
    if received != expected:
        raise SystemExit(f"{mode.name}: server received {received}, not {expected}")
    return samples


def ms(seconds):
    return f"{seconds * 1000:8.2f}"


def report(mode, samples, count):
    """Print the figures of one mode."""
    print(f"\n{mode.name}: {count} messages per client, interleaved rounds")
    print(f"{'':34}{'median ms':>10}{'p95 ms':>10}")
    pairs = (
        ("(a) test message", "engine_test", "smtplib_test"),
        ("(c) open_connection + send", "engine_open", "smtplib_open"),
    )
    for title, engine, baseline in pairs:
        medians = [statistics.median(samples[k]) for k in (engine, baseline)]
        p95s = [percentile(samples[k], 0.95) for k in (engine, baseline)]
        print(title)
        print(f"  {'engine':32}{ms(medians[0])}  {ms(p95s[0])}")
        print(f"  {'smtplib':32}{ms(medians[1])}  {ms(p95s[1])}")
        ratio = f"{medians[0] / medians[1]:8.2f}x  {p95s[0] / p95s[1]:8.2f}x"
        print(f"  {'engine/smtplib':32}{ratio}")
    engine_total = statistics.median(samples["engine_test"])
    engine_compose = statistics.median(samples["engine_compose"])
    baseline_total = statistics.median(samples["smtplib_test"])
    baseline_compose = statistics.median(samples["smtplib_compose"])
    print("(a) split of the medians (ms)")
    line = (
        f"  engine:  compose {ms(engine_compose).strip()}, "
        f"the rest {ms(engine_total - engine_compose).strip()}"
    )
    if samples["engine_context"]:
        context = statistics.median(samples["engine_context"])
        line += f" (of which building the TLS context {ms(context).strip()})"
    print(line)
    print(
        f"  smtplib: compose {ms(baseline_compose).strip()}, "
        f"the rest {ms(baseline_total - baseline_compose).strip()}"
    )


def build_parser():
    parser = argparse.ArgumentParser(
        description=(
            "Send messages through a loopback SMTP server with the engine and "
            "with plain smtplib, interleaved, and print per-message medians, "
            "95th percentiles and the ratios engine/smtplib."
        )
    )
    parser.add_argument(
        "--count",
        type=int,
        default=200,
        help="messages per client and mode (200)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=5,
        help="rounds sent first and not counted (5)",
    )
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.count < 1 or args.warmup < 0:
        raise SystemExit("--count must be at least 1 and --warmup at least 0")
    threads_before = running_threads()
    started = time.perf_counter()
    print(
        f"Python {sys.version.split()[0]}, OpenSSL {ssl.OPENSSL_VERSION.split()[1]}, "
        f"{len(CLIENTS)} clients, server and clients in one process"
    )
    with tempfile.TemporaryDirectory(prefix="bench-send-") as directory:
        certs = make_test_certificates(directory)
        setups = (
            ("Plain SMTP", {}, {}),
            (
                "STARTTLS + AUTH",
                {
                    "tls": "starttls",
                    "require_starttls": True,
                    "certs": certs,
                    "auth": {LOGIN: PASSWORD},
                },
                {
                    "encryption": "starttls",
                    "auth_required": True,
                    "username": LOGIN,
                    "password": PASSWORD,
                },
            ),
        )
        for name, server_options, settings_options in setups:
            with LoopbackSmtpServer(**server_options) as server:
                settings = SmtpSettings(
                    host=server.host,
                    port=server.port,
                    timeout=TIMEOUT,
                    sender_name=SENDER_NAME,
                    sender_email=SENDER,
                    cafile=str(certs.ca_cert),
                    **settings_options,
                )
                context = ssl.create_default_context(cafile=str(certs.ca_cert))
                mode = Mode(name, server, settings, context)
                samples = run_mode(mode, args.count, args.warmup)
            report(mode, samples, args.count)
    print(f"\nwhole run: {time.perf_counter() - started:.1f} s")
    fail_on_threads_left(threads_before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
