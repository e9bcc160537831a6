#!/usr/bin/env python3
"""Time Odoo's mail queue with 200 accounts configured against core alone.

One fast ``LoopbackSmtpServer`` (aiosmtpd, plain SMTP) receives everything.
Databases: "core" has ``mail`` and one plain ``ir.mail_server`` (no
from-filter) for that server; "core, two servers" is a copy of it with a
second plain server whose from-filter is the address of the first account
below; "addon" is a copy with the addon installed and no account;
"accounts" is another such copy with 200 accounts of that same server, each
with an address of its own.

Each measurement queues 1,000 ``mail.mail`` (created by the administrator,
committed, not timed), then times Odoo's queue, "Mail: Email Queue Manager"
run as the cron worker runs it (``ir.cron.method_direct_trigger``), until
it returns; every mail must then be sent and received. Core's queue opens
one connection per server and sends each server's mail as one batch, so
each case is compared with core sending the same mail in the same batches:

    core, one server         the plain server sends all
    addon, no account        the addon installed, the plain server sends all
    200 accounts, other sender
                             the mail is from an address that is no
                             account's: the plain server sends all
        compared with: core, one server
    core, two servers        500 mails from the first account's address (the
                             second server) and 500 from the other address
    200 accounts, half through one
                             the same 500 + 500 mails: through that account
                             (hence the engine) and through the plain server
        compared with: core, two servers

    python3 benchmarks/bench_queue.py [--repeat 3] [--mails 1000]
"""

import argparse
import statistics
import sys
import time

from _common import print_header, spread, turned, whole_run
from _odoo import OdooBench, run_cron, skip_without_odoo

from smtp_engine.tests.servers import LoopbackSmtpServer

QUEUE_CRON = "mail.ir_cron_mail_scheduler_action"
OTHER_SENDER = "Sales <sales@example.org>"
ACCOUNTS = 200


def build_parser():
    parser = argparse.ArgumentParser(
        description="Odoo's mail queue with 200 accounts against core alone."
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds (3)")
    parser.add_argument("--mails", type=int, default=1000, help="mails a run (1000)")
    return parser


def add_plain_server(bench, registry, port):
    with bench.env(registry) as env:
        env["ir.mail_server"].create(
            {
                "name": "Plain loopback server",
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "smtp_encryption": "none",
                "sequence": 1,
            }
        )


def add_filtered_server(bench, registry, port, address):
    with bench.env(registry) as env:
        env["ir.mail_server"].create(
            {
                "name": "Filtered loopback server",
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "smtp_encryption": "none",
                "from_filter": address,
                "sequence": 2,
            }
        )


def add_accounts(bench, registry, port):
    with bench.env(registry) as env:
        accounts = env["email.account"].create(
            [
                {
                    "name": f"Account {n:03}",
                    "sender_email": f"account{n:03}@accounts.example.com",
                    "smtp_host": "127.0.0.1",
                    "smtp_port": port,
                    "smtp_encryption": "none",
                    "health_watch": False,
                }
                for n in range(ACCOUNTS)
            ]
        )
        return accounts[0].sender_email


def queue_mails(bench, registry, senders):
    with bench.env(registry) as env:
        env["mail.mail"].create(
            [
                {
                    "email_from": sender,
                    "email_to": f"customer{n}@example.net",
                    "subject": f"Order {n}",
                    "body_html": f"<p>Your order {n} has shipped.</p>",
                }
                for n, sender in enumerate(senders)
            ]
        )


def run_queue(bench, registry, server, count):
    """Seconds Odoo's queue takes to send the queued mail."""
    server.messages.clear()
    with bench.env(registry) as env:
        cron = env.ref(QUEUE_CRON).id
        started = time.perf_counter()
        run_cron(env, cron)
        seconds = time.perf_counter() - started
    with bench.env(registry) as env:
        left = env["mail.mail"].search_count([("state", "!=", "sent")])
        if left:
            failed = env["mail.mail"].search([("state", "!=", "sent")], limit=1)
            raise SystemExit(f"{left} mails not sent: {failed.failure_reason}")
    if len(server.messages) != count:
        raise SystemExit(f"{len(server.messages)} of {count} mails received")
    server.messages.clear()
    return seconds


def main(argv=None):
    args = build_parser().parse_args(argv)
    skip_without_odoo("bench_queue")
    results = {}
    with (
        whole_run(),
        OdooBench("email_account_bench_queue") as bench,
        LoopbackSmtpServer() as server,
    ):
        core = bench.name("core")
        core_two = bench.name("core_two")
        addon = bench.name("addon")
        accounts = bench.name("accounts")
        bench.install(core, "mail")
        bench.copy(core, core_two)
        for copy in (addon, accounts):
            bench.install(copy, "email_account", template=core)
        databases = (core, core_two, addon, accounts)
        registries = {name: bench.registry(name) for name in databases}
        for registry in registries.values():
            add_plain_server(bench, registry, server.port)
        account_sender = add_accounts(bench, registries[accounts], server.port)
        add_filtered_server(bench, registries[core_two], server.port, account_sender)
        half = args.mails // 2
        one = [OTHER_SENDER] * args.mails
        two = [account_sender, OTHER_SENDER] * half + one[: args.mails - 2 * half]
        cases = {
            "core, one server": (core, one),
            "addon, no account": (addon, one),
            "200 accounts, other sender": (accounts, one),
            "core, two servers": (core_two, two),
            "200 accounts, half through one": (accounts, two),
        }
        names = list(cases)
        for round_ in range(args.repeat):
            for name in turned(names, round_):
                database, senders = cases[name]
                queue_mails(bench, registries[database], senders)
                seconds = run_queue(bench, registries[database], server, len(senders))
                results.setdefault(name, []).append(seconds)
        report(results, args)
    return 0


BASELINES = {
    "core, one server": "core, one server",
    "addon, no account": "core, one server",
    "200 accounts, other sender": "core, one server",
    "core, two servers": "core, two servers",
    "200 accounts, half through one": "core, two servers",
}


def report(results, args):
    print(
        f"\n{args.mails} mails through Odoo's queue; medians of {args.repeat} runs; "
        "ratio: median / median of core sending the same batches"
    )
    header = (
        f"| {'case':30} | {'median s':>8} | {'min-max s':>11} "
        f"| {'ms a mail':>9} | {'ratio':>6} |"
    )
    print_header(header)
    ratios = {}
    for name, times in results.items():
        median = statistics.median(times)
        baseline = statistics.median(results[BASELINES[name]])
        ratios[name] = median / baseline
        print(
            f"| {name:30} | {median:8.2f} | {spread(times):>11} "
            f"| {1000 * median / args.mails:9.2f} | {median / baseline:5.2f}x |"
        )
    worst = max(ratios.values())
    print(
        f"\ngoal: at most 1.10x core with 200 accounts: worst case {worst:.2f}x, "
        f"{'met' if worst <= 1.10 else 'missed'}"
    )


if __name__ == "__main__":
    sys.exit(main())
