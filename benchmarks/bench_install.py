#!/usr/bin/env python3
"""Time installing the addon on a database with ``mail``, beside installing ``mail``.

Each round times Odoo's own command line, ``odoo -d DB -i MODULES
--stop-after-init`` (a new process each time, without demo data), for:

    base                  a new database, ``-i base``
    mail, new database    a new database, ``-i mail`` (base included)
    mail on base          a copy of the "base" database, ``-i mail``
    dependencies          a copy of the "mail" database,
                          ``-i microsoft_outlook,google_gmail`` (what the
                          addon needs besides mail)
    the addon             a copy of the "mail" database, ``-i email_account``
                          (its dependencies included)

Copies are made with ``createdb -T`` before the clock starts. The ratios
are the addon's time over the time of ``mail`` on a new database, and over
``mail`` on top of base. Every database is dropped at the end of its round.

    python3 benchmarks/bench_install.py [--repeat 3]
"""

import argparse
import statistics
import sys

from _common import print_header, spread, whole_run
from _odoo import OdooBench, skip_without_odoo

DEPENDENCIES = "microsoft_outlook,google_gmail"


def build_parser():
    parser = argparse.ArgumentParser(
        description="Install the addon on a database with mail, beside mail."
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds (3)")
    return parser


def one_round(bench, round_):
    base = bench.name(f"base{round_}")
    mail = bench.name(f"mail{round_}")
    times = {
        "base": bench.install(base, "base"),
        "mail, new database": bench.install(mail, "mail"),
        "mail on base": bench.install(
            bench.name(f"mail_on_base{round_}"), "mail", template=base
        ),
        "dependencies": bench.install(
            bench.name(f"dependencies{round_}"), DEPENDENCIES, template=mail
        ),
        "the addon": bench.install(
            bench.name(f"addon{round_}"), "email_account", template=mail
        ),
    }
    for database in list(bench.databases):
        bench.drop(database)
    return times


def main(argv=None):
    args = build_parser().parse_args(argv)
    skip_without_odoo("bench_install")
    rows = {}
    with whole_run(), OdooBench("email_account_bench_install") as bench:
        for round_ in range(args.repeat):
            for name, seconds in one_round(bench, round_).items():
                rows.setdefault(name, []).append(seconds)
        report(rows, args)
    return 0


def report(rows, args):
    medians = {name: statistics.median(times) for name, times in rows.items()}
    print(f"\nodoo -i ... --stop-after-init; medians of {args.repeat} runs, seconds")
    header = (
        f"| {'install':20} | {'median s':>8} | {'min-max s':>11} "
        f"| {'vs mail, new db':>15} | {'vs mail on base':>15} |"
    )
    print_header(header)
    for name, times in rows.items():
        median = medians[name]
        print(
            f"| {name:20} | {median:8.1f} | {spread(times, 1):>11} "
            f"| {median / medians['mail, new database']:14.2f}x "
            f"| {median / medians['mail on base']:14.2f}x |"
        )
    own = medians["the addon"] - medians["dependencies"]
    print(
        f"\nthe addon without its dependencies: about {own:.1f} s "
        f"({own / medians['mail on base']:.2f}x mail on base)"
    )


if __name__ == "__main__":
    sys.exit(main())
