#!/usr/bin/env python3
"""Time the delivery check of 1 and 10 accounts, from the server action.

On loopback: Dovecot (implicit TLS, a certificate of a test CA), an SMTP
server that files every message it accepts in one Dovecot mailbox, after
``--delay`` seconds where asked, and a DNS server holding the SPF and DMARC
records of the sender domain. Odoo is told to trust the test CA and to ask
that DNS server (``email_account_ca_file``, ``email_account_dns_server``).
The request and the runner are those of ``bench_checks.py``: the server
action on N accounts, then the cron runner until every result is stored.

Timed: from the request until every account has its result stored and
committed. Every account has a 60 s time-out, so that all are checked in
the background, with or without the delivery check. Cases:

    what a round trip adds   1 account without the delivery check, and 1
                             with it, the message filed at once (``--pairs``
                             runs of each a round, 10, in turns)
    parallel waits           1 and 10 accounts with the delivery check, each
                             message held back ``--delay`` seconds (2)
    never filed              1 and 10 accounts with the delivery check whose
                             messages the server drops, searched for the
                             shortest wait allowed, 5 s

Each check must end as expected (sent; found in the inbox and trusted, or
not found), with SPF and DMARC asked of the DNS server, or the script stops.
Where Dovecot, aiosmtpd or dnslib is missing it says so and exits with 0.

    python3 benchmarks/bench_roundtrip.py [--repeat 3] [--delay 2.0]
"""

import argparse
import sys
import tempfile
import time

from _common import median, print_header, spread, turned, whole_run
from _odoo import OdooBench, check_until_stored, skip_without_odoo

from smtp_engine.tests.dns_server import LoopbackDnsServer
from smtp_engine.tests.dovecot import (
    DeliveringSmtpServer,
    DovecotServer,
    dovecot_missing,
)
from smtp_engine.tests.servers import make_test_certificates

MAILBOX = "bench@example.com"
PASSWORD = "bench-Pa55word"
DOMAIN = "roundtrip.test"
ZONE = f"""
{DOMAIN}.         300 IN TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc.{DOMAIN}.  300 IN TXT "v=DMARC1; p=reject"
"""
# The verdicts a receiving provider puts on top of what it accepts.
PASSING = (
    f"mx.example.test; spf=pass smtp.mailfrom=bench@{DOMAIN}; "
    f"dkim=pass header.d={DOMAIN}; dmarc=pass header.from={DOMAIN}"
)
# Long enough that every account is checked in the background.
SMTP_TIMEOUT = 60
# The shortest Wait for Delivery allowed: how long the search for a message
# that never arrives lasts.
LOST_WAIT = 5


class BenchDovecot(DovecotServer):
    """Dovecot that lets one user log in many times at once from loopback.

    Every account here logs in to the same mailbox, where real accounts
    each have their own: Dovecot's default of 10 IMAP connections per user
    and address would refuse the eleventh search.
    """

    def _configuration(self):
        return (
            super()._configuration()
            + "protocol imap {\n  mail_max_userip_connections = 1000\n}\n"
        )


class TimedDeliveringServer(DeliveringSmtpServer):
    """Keeps when each sender's message was accepted (``time.perf_counter()``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.accepted = []

    def deliver_last(self):
        self.accepted.append((self.messages[-1].mail_from, time.perf_counter()))
        return super().deliver_last()


def build_parser():
    parser = argparse.ArgumentParser(
        description="The delivery check of 1 and 10 accounts, on loopback."
    )
    parser.add_argument(
        "--delay",
        type=float,
        default=2.0,
        help="seconds each message is held back before it is filed (2.0)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds (3)")
    parser.add_argument(
        "--count", type=int, default=10, help="accounts checked at once (10)"
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=10,
        help="runs a round of 1 account with and without the delivery "
        "check, the message filed at once (10)",
    )
    parser.add_argument(
        "--wait",
        type=int,
        default=30,
        help="the accounts' Wait for Delivery, seconds (30)",
    )
    return parser


def missing():
    """Why this benchmark cannot run here besides Odoo, or ""."""
    if reason := dovecot_missing():
        return reason
    try:
        import aiosmtpd  # noqa: F401
        import dnslib  # noqa: F401
    except ImportError as exc:
        return f"a test server's library is missing ({exc})"
    return ""


def create_accounts(env, smtp, dovecot, count, label, delivery_check, wait):
    values = [
        {
            "name": f"{label} {n:02}",
            "sender_email": f"{label.lower().replace(' ', '')}{n:02}@{DOMAIN}",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_encryption": "none",
            "smtp_auth_required": False,
            "smtp_timeout": SMTP_TIMEOUT,
            "health_watch": False,
            # The IMAP login is the account's user name and password.
            "username": MAILBOX,
            "password": PASSWORD,
            "delivery_check": delivery_check,
            "imap_host": "127.0.0.1",
            "imap_port": dovecot.port,
            "imap_encryption": "ssl",
            "roundtrip_wait": wait,
        }
        for n in range(count)
    ]
    return env["email.account"].create(values).ids


def measure(bench, registry, servers, ids, delay, folder="INBOX"):
    """Return the timings of one check of the accounts ``ids``.

    The server files each message in ``folder`` ``delay`` seconds after it
    accepted it, or drops it (``folder`` None).
    """
    smtp, dovecot, dns = servers
    smtp.delay = delay
    smtp.folder = folder
    state = "inbox" if folder else "not_found"
    dovecot.empty(MAILBOX)
    with bench.env(registry) as env:
        # Not timed: forget the last results, so that "done" is unambiguous.
        env.cr.execute(
            "UPDATE email_account SET test_date = NULL, roundtrip_state = 'untested' "
            "WHERE id IN %s",
            (tuple(ids),),
        )
    accepted = len(smtp.accepted)
    questions = len(dns.questions)
    started = time.perf_counter()
    answered, finished, runs = check_until_stored(bench, registry, ids)
    with bench.env(registry) as env:
        accounts = env["email.account"].browse(ids)
        delivery_check = accounts[0].delivery_check
        wrong = accounts.filtered(
            lambda a: (
                a.test_state != "ok"
                or (a.delivery_check and a.roundtrip_state != state)
                or (a.delivery_check and folder and a.trust_level != "ok")
            )
        )
        if wrong:
            account = wrong[0]
            raise SystemExit(
                f"{account.name}: {account.test_state}, {account.roundtrip_state}, "
                f"{account.trust_level}: {account.test_message} "
                f"{account.roundtrip_message or ''} {account.trust_message or ''}"
            )
        # Seconds from acceptance to arrival, or, for a message never
        # filed, to the end of the search.
        arrivals = {
            a.sender_email: a.roundtrip_seconds if folder else a.roundtrip_wait
            for a in accounts
        }
    sends = dict(smtp.accepted[accepted:])
    if sorted(sends) != sorted(arrivals):
        raise SystemExit(f"{len(sends)} messages accepted for {len(ids)} accounts")
    # SPF and DMARC of the sender domain, for each account.
    asked = len(dns.questions) - questions
    if delivery_check and asked < 2 * len(ids):
        raise SystemExit(f"{asked} DNS questions for {len(ids)} accounts")
    # When the last account's check had its answer: the message found in
    # the mailbox (or the search given up), or, without the delivery check,
    # accepted by the server.
    answers = [
        sends[sender] + (arrivals[sender] if delivery_check else 0.0)
        for sender in sends
    ]
    return {
        "delay": delay,
        "filed": bool(folder),
        "total": finished - started,
        "request": answered - started,
        "accepted": max(sends.values()) - started,
        "found": max(arrivals.values()) if delivery_check and folder else None,
        "stored": finished - max(answers),
        "runs": runs,
    }


def main(argv=None):
    args = build_parser().parse_args(argv)
    skip_without_odoo("bench_roundtrip")
    if reason := missing():
        print(f"bench_roundtrip: not run: {reason}.")
        return 0
    if not 0 <= args.delay < args.wait - 1:
        raise SystemExit("--delay must be shorter than --wait")
    rows = {}
    with (
        whole_run(),
        tempfile.TemporaryDirectory(prefix="bench_roundtrip_certs_") as certs_dir,
        OdooBench("email_account_bench_roundtrip") as bench,
    ):
        certs = make_test_certificates(certs_dir)
        with (
            BenchDovecot(certs, {MAILBOX: PASSWORD}) as dovecot,
            LoopbackDnsServer(ZONE) as dns,
            TimedDeliveringServer(
                dovecot, MAILBOX, authentication_results=PASSING
            ) as smtp,
        ):
            database = bench.name("db")
            seconds = bench.install(database, "email_account")
            print(f"installed the addon into a new database in {seconds:.1f} s")
            registry = bench.registry(database)
            from odoo.tools import config

            config["email_account_ca_file"] = str(certs.ca_cert)
            config["email_account_dns_server"] = dns.address
            with bench.env(registry) as env:
                plain = create_accounts(
                    env, smtp, dovecot, 1, "Plain", False, args.wait
                )
                checked = create_accounts(
                    env, smtp, dovecot, args.count, "Round trip", True, args.wait
                )
                lost = create_accounts(
                    env, smtp, dovecot, args.count, "Lost", True, LOST_WAIT
                )
            quick = [
                ("1, no delivery check", plain, 0.0),
                ("1, delivery check", checked[:1], 0.0),
            ]
            held = [
                ("1, delivery check, held", checked[:1], args.delay),
                (f"{args.count}, delivery check, held", checked, args.delay),
                ("1, never filed", lost[:1], 0.0, None),
                (f"{args.count}, never filed", lost, 0.0, None),
            ]
            servers = (smtp, dovecot, dns)
            for round_ in range(args.repeat):
                # The two quick cases differ by less than the machine's
                # noise: they are measured --pairs times a round, in turns.
                cases = quick * args.pairs + held
                for name, ids, *server in turned(cases, round_):
                    rows.setdefault(name, []).append(
                        measure(bench, registry, servers, ids, *server)
                    )
        report(rows, args)
    return 0


def report(rows, args):
    print(
        "\nseconds, medians; 'delay': seconds the server held each message "
        "back before filing it ('never': dropped, searched for its account's "
        f"whole wait of {LOST_WAIT} s); 'accepted': the last acceptance, from "
        "the request; 'found': the longest time from acceptance to arrival that "
        "a check stored (to 0.1 s); 'stored': from the last answer (message "
        "found, search given up, or, without the delivery check, message "
        "accepted) to the last result stored"
    )
    header = (
        f"| {'case':24} | {'delay':>5} | {'runs':>4} | {'total':>6} "
        f"| {'min-max':>11} | {'request':>7} | {'accepted':>8} | {'found':>5} "
        f"| {'stored':>6} |"
    )
    print_header(header)
    for name, samples in rows.items():
        total = median(samples, "total")
        span = spread([sample["total"] for sample in samples])
        found = (
            "-" if samples[0]["found"] is None else f"{median(samples, 'found'):.2f}"
        )
        delay = f"{samples[0]['delay']:g}" if samples[0]["filed"] else "never"
        print(
            f"| {name:24} | {delay:>5} | {len(samples):4} | {total:6.2f} "
            f"| {span:>11} | {median(samples, 'request'):7.2f} "
            f"| {median(samples, 'accepted'):8.2f} | {found:>5} "
            f"| {median(samples, 'stored'):6.2f} |"
        )
    without = median(rows["1, no delivery check"], "total")
    with_check = median(rows["1, delivery check"], "total")
    print(
        f"\nwhat a round trip adds on loopback: {with_check * 1000:.0f} ms with the "
        f"delivery check, {without * 1000:.0f} ms without: "
        f"{(with_check - without) * 1000:+.0f} ms"
    )
    one = median(rows["1, delivery check, held"], "total")
    many = median(rows[f"{args.count}, delivery check, held"], "total")
    ratio = many / one
    print(
        f"parallel waits: {args.count} accounts in {many:.2f} s, 1 in {one:.2f} s: "
        f"{ratio:.2f}x; goal: at most 1.5x, {'met' if ratio <= 1.5 else 'missed'}"
    )
    one = median(rows["1, never filed"], "total")
    many = median(rows[f"{args.count}, never filed"], "total")
    print(
        f"messages never filed: {args.count} accounts in {many:.2f} s, 1 in "
        f"{one:.2f} s: {many / one:.2f}x ({args.count}x if the searches waited "
        "one after the other)"
    )


if __name__ == "__main__":
    sys.exit(main())
