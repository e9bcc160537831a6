#!/usr/bin/env python3
"""Time real sending through Odoo's queue against a server that never answers.

Two misbehaving loopback servers: a ``SilentServer`` (accepts, never speaks)
and a ``TricklingServer`` (an endless "220-" greeting, one byte every
``--interval`` seconds, a slow drip). In a database with the addon, one mail
is queued at a time and Odoo's queue ("Mail: Email Queue Manager", run as
the cron worker runs it) is timed until it returns with the mail failed:

    account   from the address of an account whose time-out T is 1, 3 or 5 s:
              the engine's deadline for the whole connection
    core      from an address routed to a plain ``ir.mail_server`` of the same
              server: core's smtplib with its fixed time-out of 60 s for each
              socket operation, which a slow drip renews byte after byte

The queue runs in a thread that is waited for at most the cap (15 s); at
the cap the server is stopped, which ends the connection, and the time is
printed as "> cap". Core's time does not depend on T: it is measured
``--core-repeat`` times (1) per server.

    python3 benchmarks/bench_sending_deadline.py [--repeat 3] [--cap 15]
"""

import argparse
import statistics
import sys
import threading
import time

from _common import print_header, whole_run
from _odoo import OdooBench, run_cron, skip_without_odoo

from smtp_engine.tests.servers import SilentServer, TricklingServer

QUEUE_CRON = "mail.ir_cron_mail_scheduler_action"
ACCOUNT_SENDER = "deadline@accounts.example.com"
CORE_SENDER = "core@example.org"
# Allowed beyond T before the account counts as late.
SLACK = 1.0


def build_parser():
    parser = argparse.ArgumentParser(
        description="The account's deadline and core's time-out in real sending."
    )
    parser.add_argument(
        "--timeouts", default="1,3,5", help="the account's T, seconds (1,3,5)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per T (3)")
    parser.add_argument(
        "--core-repeat", type=int, default=1, help="runs of core per server (1)"
    )
    parser.add_argument("--cap", type=float, default=15.0, help="seconds (15)")
    parser.add_argument(
        "--interval", type=float, default=0.05, help="seconds between bytes (0.05)"
    )
    return parser


def point_at(bench, registry, port, timeout=None):
    """Point the account (with time-out ``timeout``) and core's server at ``port``."""
    with bench.env(registry) as env:
        account = env["email.account"].search([("sender_email", "=", ACCOUNT_SENDER)])
        values = {"smtp_port": port}
        if timeout:
            values["smtp_timeout"] = timeout
        account.write(values)
        core = env["ir.mail_server"].search([("from_filter", "=", CORE_SENDER)])
        core.write({"smtp_port": port})


def time_queue(bench, registry, server, sender, cap):
    """Queue one mail from ``sender``; return (seconds, capped, outcome)."""
    with bench.env(registry) as env:
        mail = env["mail.mail"].create(
            {
                "email_from": sender,
                "email_to": "customer@example.net",
                "subject": "Deadline",
                "body_html": "<p>Does it leave?</p>",
                "auto_delete": False,
            }
        )
        cron = env.ref(QUEUE_CRON).id
    errors = []

    def run():
        try:
            with bench.env(registry) as env:
                run_cron(env, cron)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=run, name="bench-queue")
    started = time.perf_counter()
    thread.start()
    thread.join(cap)
    capped = thread.is_alive()
    if capped:
        # Stopping the server closes the connection the queue waits on.
        server.stop()
        thread.join(60)
    seconds = time.perf_counter() - started
    if errors:
        raise SystemExit(f"the queue failed: {errors[0]}")
    with bench.env(registry) as env:
        mail = env["mail.mail"].browse(mail.id)
        reason = (mail.failure_reason or "").splitlines()
        first = reason[0] if reason else ""
        # The account's reason names the step: keep that part.
        first = first[first.find("failed at") :] if "failed at" in first else first
        outcome = f"{mail.state}: {first}"[:70]
        mail.sudo().unlink()
    return (min(seconds, cap) if capped else seconds), capped, outcome


def show(seconds, capped):
    return f"> {seconds:.2f}" if capped else f"{seconds:.2f}"


def main(argv=None):
    args = build_parser().parse_args(argv)
    timeouts = [int(t) for t in args.timeouts.split(",")]
    skip_without_odoo("bench_sending_deadline")
    servers = {
        "silent": SilentServer,
        "slow drip": lambda: TricklingServer(interval=args.interval),
    }
    rows = []
    with whole_run(), OdooBench("email_account_bench_deadline") as bench:
        database = bench.name("db")
        bench.install(database, "email_account")
        registry = bench.registry(database)
        with bench.env(registry) as env:
            env["email.account"].create(
                {
                    "name": "Deadline",
                    "sender_email": ACCOUNT_SENDER,
                    "smtp_host": "127.0.0.1",
                    "smtp_port": 25,
                    "smtp_encryption": "none",
                    "health_watch": False,
                }
            )
            env["ir.mail_server"].create(
                {
                    "name": "Core's own server",
                    "smtp_host": "127.0.0.1",
                    "smtp_port": 25,
                    "smtp_encryption": "none",
                    "from_filter": CORE_SENDER,
                }
            )
        for server_name, make_server in servers.items():
            clients = [(f"account, T = {t} s", t, args.repeat) for t in timeouts]
            clients.append(("core (60 s a read)", None, args.core_repeat))
            for client, timeout, repeat in clients:
                times, capped, outcome = [], False, ""
                for _ in range(repeat):
                    with make_server() as server:
                        point_at(bench, registry, server.port, timeout)
                        sender = ACCOUNT_SENDER if timeout else CORE_SENDER
                        seconds, stopped, outcome = time_queue(
                            bench, registry, server, sender, args.cap
                        )
                    times.append(seconds)
                    capped = capped or stopped
                rows.append((server_name, client, timeout, times, capped, outcome))
        report(rows, args)
    return 0


def report(rows, args):
    print(
        f"\none mail through Odoo's queue; cap {args.cap:g} s; slow drip: one "
        f"byte every {args.interval:g} s; medians; in time: within T + "
        f"{SLACK:g} s"
    )
    header = (
        f"| {'server':9} | {'client':18} | {'runs':>4} | {'median s':>8} "
        f"| {'max s':>7} | {'in time':7} | {'vs core':>7} | mail after the run |"
    )
    print_header(header)
    core = {
        server: (statistics.median(times), capped)
        for server, _c, timeout, times, capped, _o in rows
        if timeout is None
    }
    met = True
    for server, client, timeout, times, capped, outcome in rows:
        median = statistics.median(times)
        if timeout is None:
            in_time, versus = "-", "1.00x"
        else:
            ok = not capped and max(times) <= timeout + SLACK
            met = met and ok
            in_time = "yes" if ok else "no"
            core_median, core_capped = core[server]
            versus = f"{'< ' if core_capped else ''}{median / core_median:.2f}x"
        print(
            f"| {server:9} | {client:18} | {len(times):4} "
            f"| {show(median, capped):>8} | {show(max(times), capped):>7} "
            f"| {in_time:7} | {versus:>7} | {outcome} |"
        )
    print(
        f"\ngoal: the account gives up within T + {SLACK:g} s in real sending: "
        f"{'met' if met else 'missed'}"
    )


if __name__ == "__main__":
    sys.exit(main())
