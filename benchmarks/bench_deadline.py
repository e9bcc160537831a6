#!/usr/bin/env python3
"""Time how long a client waits for a server that never finishes its greeting.

Two misbehaving loopback servers: a ``SilentServer`` that accepts and says
nothing, and a ``TricklingServer`` that sends an endless "220-" greeting one
byte at a time. Against each, with the same time-out T, side by side:

    engine    send_test_message, and open_connection: one deadline of T
              seconds for the whole exchange
    smtplib   plain smtplib.SMTP(host, port, timeout=T): T is the limit of
              each socket operation, so a server that keeps sending a byte
              now and then holds it indefinitely

smtplib runs in a thread that is waited for at most the cap (5 x T by
default); at the cap its socket is shut down and its time printed as
"> cap". Printed: the time until each client gave up, whether it stayed
within T + 1 s, and the ratio engine/smtplib.

    python3 benchmarks/bench_deadline.py [--timeout 2]
"""

import argparse
import contextlib
import smtplib
import socket
import statistics
import sys
import threading
import time

from _common import fail_on_threads_left, running_threads

from smtp_engine import (
    SmtpEngineError,
    SmtpSettings,
    open_connection,
    send_test_message,
)
from smtp_engine.tests.servers import SilentServer, TricklingServer

SENDER = "bench@example.com"
# Allowed beyond T before a client counts as late.
SLACK = 1.0


class _WatchedSMTP(smtplib.SMTP):
    """Plain ``smtplib.SMTP`` that hands its socket over once connected.

    Nothing in its behaviour changes; the benchmark only needs the socket to
    end a connection that smtplib itself would never give up.
    """

    def __init__(self, sockets, *args, **kwargs):
        self._sockets = sockets
        super().__init__(*args, **kwargs)

    def _get_socket(self, host, port, timeout):
        sock = super()._get_socket(host, port, timeout)
        self._sockets.append(sock)
        return sock


def time_smtplib(server, timeout, cap):
    """Return ``(seconds, capped, outcome)`` for smtplib against ``server``."""
    sockets = []
    outcome = {}

    def attempt():
        try:
            client = _WatchedSMTP(sockets, server.host, server.port, timeout=timeout)
        except (smtplib.SMTPException, OSError) as exc:
            outcome["ended"] = time.perf_counter()
            outcome["text"] = f"{type(exc).__name__}: {exc}"
        else:
            outcome["ended"] = time.perf_counter()
            outcome["text"] = "connected"
            client.close()

    thread = threading.Thread(target=attempt, name="bench-smtplib", daemon=True)
    started = time.perf_counter()
    thread.start()
    thread.join(cap)
    if not thread.is_alive():
        return outcome["ended"] - started, False, outcome["text"]
    seconds = time.perf_counter() - started
    # Shutting the socket down ends the read that smtplib is blocked in.
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    thread.join(5)
    return seconds, True, "still reading the greeting, stopped at the cap"


def time_engine_test(server, timeout):
    settings = SmtpSettings(
        host=server.host, port=server.port, timeout=timeout, sender_email=SENDER
    )
    started = time.perf_counter()
    result = send_test_message(settings, "Benchmark account")
    seconds = time.perf_counter() - started
    if result.ok:
        raise SystemExit("the engine reported success against a broken server")
    return seconds, False, f"failed at {result.step}, hint {result.hint}"


def time_engine_open(server, timeout):
    settings = SmtpSettings(
        host=server.host, port=server.port, timeout=timeout, sender_email=SENDER
    )
    started = time.perf_counter()
    try:
        session = open_connection(settings)
    except SmtpEngineError as exc:
        seconds = time.perf_counter() - started
        result = exc.result
        return seconds, False, f"failed at {result.step}, hint {result.hint}"
    session.close()
    raise SystemExit("open_connection succeeded against a broken server")


def build_parser():
    parser = argparse.ArgumentParser(
        description=(
            "Time the engine's deadline and plain smtplib's time-out against a "
            "silent and a trickling loopback SMTP server, side by side."
        )
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=2.0,
        help="time-out T in seconds, the same for every client (2)",
    )
    parser.add_argument(
        "--cap-factor",
        type=float,
        default=5.0,
        help="stop waiting for smtplib after this many times T (5)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=0.05,
        help="seconds between two bytes of the trickling server (0.05)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measurements per client and server (1)",
    )
    return parser


def show(seconds, capped):
    text = f"{seconds:.2f}"
    return f"> {text}" if capped else text


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.timeout <= 0 or args.cap_factor < 1 or args.interval <= 0:
        raise SystemExit("--timeout and --interval must be positive, --cap-factor >= 1")
    if args.repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    timeout = args.timeout
    cap = args.cap_factor * timeout
    threads_before = running_threads()
    print(
        f"T = {timeout:g} s; smtplib is stopped at the cap of {cap:g} s; "
        f"late means more than T + {SLACK:g} s; "
        f"trickling server: one byte every {args.interval:g} s"
    )
    clients = (
        ("engine send_test_message", lambda s: time_engine_test(s, timeout)),
        ("engine open_connection", lambda s: time_engine_open(s, timeout)),
        ("smtplib.SMTP(timeout=T)", lambda s: time_smtplib(s, timeout, cap)),
    )
    servers = (
        ("silent", lambda: SilentServer()),
        ("trickling", lambda: TricklingServer(interval=args.interval)),
    )
    header = f"{'server':11}{'client':27}{'median s':>10}{'max s':>10}  {'in T+1':7}"
    print(header + "outcome")
    medians = {}
    for server_name, make_server in servers:
        for client_name, run in clients:
            times, capped, outcome = [], False, ""
            for _ in range(args.repeat):
                with make_server() as server:
                    seconds, stopped, outcome = run(server)
                times.append(seconds)
                capped = capped or stopped
            median = statistics.median(times)
            medians[server_name, client_name] = (median, capped)
            within = "yes" if max(times) <= timeout + SLACK and not capped else "no"
            print(
                f"{server_name:11}{client_name:27}"
                f"{show(median, capped):>10}{show(max(times), capped):>10}  "
                f"{within:7}{outcome}"
            )
    print("\nratio engine send_test_message / smtplib, of the medians:")
    for server_name, _make in servers:
        engine, _ = medians[server_name, clients[0][0]]
        baseline, capped = medians[server_name, clients[2][0]]
        ratio = f"< {engine / baseline:.2f}" if capped else f"{engine / baseline:.2f}"
        print(f"  {server_name:11}{ratio}")
    fail_on_threads_left(threads_before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
