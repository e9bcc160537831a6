#!/usr/bin/env python3
"""Time the check of 1, 10 and 50 accounts of a slow server, from the server action.

A ``SlowServer`` on loopback answers each command, the greeting included,
after ``--delay`` seconds (0.5): one test message is seven replies, 3.5 s.
A database with the addon is made by ``odoo -i email_account``; the script
then works in it through Odoo's registry, committing as a server would:

    request   the server action "Check Account Settings" on N accounts, as
              the administrator, in one transaction (committed)
    runner    the scheduled action "Email Accounts: run the checks", run as
              the cron worker runs it (``ir.cron.method_direct_trigger``),
              again until every account has a stored result

Timed: from the request until every account has its result stored and
committed. One account with a 30 s time-out is checked within the request;
"1 (background)" is one account with a 60 s time-out, which the request
sends to the background. While every conversation is waiting for the
server, PostgreSQL is asked which tables Odoo's connections hold write or
row locks on: the database work should be outside the network wait.

    python3 benchmarks/bench_checks.py [--repeat 3] [--delay 0.5]
"""

import argparse
import sys
import threading
import time

from _common import median, print_header, spread, turned, whole_run
from _odoo import OdooBench, check_until_stored, skip_without_odoo
from _servers import SlowServer

# The runner's own bookkeeping, not the checks' work.
CRON_TABLES = {"ir_cron", "ir_cron_trigger", "ir_cron_progress"}
LOCKS = """
    SELECT DISTINCT c.relname
      FROM pg_locks l
      JOIN pg_class c ON c.oid = l.relation
      JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE a.datname = %s AND a.backend_type = 'client backend'
       AND l.pid <> pg_backend_pid() AND c.relkind = 'r'
       AND l.mode IN ('RowShareLock', 'RowExclusiveLock')
"""


class LockSampler:
    """Polls PostgreSQL for the tables Odoo's connections write or lock."""

    def __init__(self, database, interval=0.02):
        self.database = database
        self.interval = interval
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-locks")

    def _run(self):
        import psycopg2

        connection = psycopg2.connect(dbname=self.database)
        connection.autocommit = True
        try:
            with connection.cursor() as cr:
                while not self._stop.wait(self.interval):
                    cr.execute(LOCKS, (self.database,))
                    tables = {row[0] for row in cr.fetchall()} - CRON_TABLES
                    self.samples.append((time.perf_counter(), tables))
        finally:
            connection.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()

    def tables_between(self, start, end):
        found = set()
        for moment, tables in self.samples:
            if start <= moment <= end:
                found |= tables
        return found


def build_parser():
    parser = argparse.ArgumentParser(
        description="Check 1, 10 and 50 accounts of a slow loopback server."
    )
    parser.add_argument("--delay", type=float, default=0.5, help="seconds (0.5)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (3)")
    parser.add_argument(
        "--counts", default="1,10,50", help="account counts, comma-separated"
    )
    return parser


def create_accounts(env, port, count, timeout, label):
    values = [
        {
            "name": f"{label} {n:02}",
            "sender_email": f"{label.lower()}{n:02}@example.com",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_encryption": "none",
            "smtp_auth_required": False,
            "smtp_timeout": timeout,
            "health_watch": False,
        }
        for n in range(count)
    ]
    return env["email.account"].create(values).ids


def measure(bench, registry, server, ids):
    """Return the timings of one check of the accounts ``ids``."""
    with bench.env(registry) as env:
        # Not timed: forget the last results, so that "done" is unambiguous.
        env.cr.execute(
            "UPDATE email_account SET test_date = NULL WHERE id IN %s", (tuple(ids),)
        )
    seen = len(server.conversations)
    with LockSampler(registry.db_name) as sampler:
        started = time.perf_counter()
        answered, finished, runs = check_until_stored(bench, registry, ids)
    conversations = server.conversations[seen:]
    if len(conversations) != len(ids):
        raise SystemExit(f"{len(conversations)} conversations for {len(ids)} accounts")
    first = min(begin for begin, _end in conversations)
    last = max(end for _begin, end in conversations)
    # Every conversation has begun and none has ended: all wait for the server.
    all_waiting = (max(b for b, _e in conversations), min(e for _b, e in conversations))
    return {
        "total": finished - started,
        "request": answered - started,
        "before": first - started,
        "network": last - first,
        "after": finished - last,
        "longest": max(end - begin for begin, end in conversations),
        "runs": runs,
        "locked": sampler.tables_between(*all_waiting),
    }


def main(argv=None):
    args = build_parser().parse_args(argv)
    counts = [int(n) for n in args.counts.split(",")]
    skip_without_odoo("bench_checks")
    rows = {}
    with (
        whole_run(),
        OdooBench("email_account_bench_checks") as bench,
        SlowServer(delay=args.delay) as server,
    ):
        database = bench.name("db")
        seconds = bench.install(database, "email_account")
        print(f"installed the addon into a new database in {seconds:.1f} s")
        registry = bench.registry(database)
        with bench.env(registry) as env:
            quick = create_accounts(env, server.port, max(counts), 30, "Quick")
            (slow,) = create_accounts(env, server.port, 1, 60, "Long")
        cases = [("1 (within the request)", quick[:1])]
        cases.append(("1 (background)", [slow]))
        cases += [(str(n), quick[:n]) for n in counts if n > 1]
        for round_ in range(args.repeat):
            for name, ids in turned(cases, round_):
                rows.setdefault(name, []).append(measure(bench, registry, server, ids))
        report(rows, args)
    return 0


def report(rows, args):
    print(
        f"\nserver delay {args.delay:g} s a reply; medians of {args.repeat} runs, "
        "seconds; ratio: total / total of one account"
    )
    baseline = {
        "within": median(rows["1 (within the request)"], "total"),
        "background": median(rows["1 (background)"], "total"),
    }
    header = (
        f"| {'accounts':22} | {'total':>6} | {'min-max':>11} | {'request':>7} "
        f"| {'before':>6} | {'network':>7} | {'after':>6} | {'longest':>7} "
        f"| {'vs 1 (req.)':>11} | {'vs 1 (bg)':>9} | locked while waiting |"
    )
    print_header(header)
    for name, samples in rows.items():
        total = median(samples, "total")
        span = spread([sample["total"] for sample in samples])
        locked = set().union(*(s["locked"] for s in samples))
        print(
            f"| {name:22} | {total:6.2f} | {span:>11} "
            f"| {median(samples, 'request'):7.2f} | {median(samples, 'before'):6.2f} "
            f"| {median(samples, 'network'):7.2f} | {median(samples, 'after'):6.2f} "
            f"| {median(samples, 'longest'):7.2f} "
            f"| {total / baseline['within']:10.2f}x "
            f"| {total / baseline['background']:8.2f}x "
            f"| {', '.join(sorted(locked)) or 'nothing'} |"
        )
    biggest = list(rows)[-1]
    ratio = median(rows[biggest], "total") / baseline["within"]
    print(
        f"\ngoal: {biggest} accounts in at most 2x the time of one: "
        f"{ratio:.2f}x, {'met' if ratio <= 2 else 'missed'}"
    )


if __name__ == "__main__":
    sys.exit(main())
