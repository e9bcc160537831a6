#!/usr/bin/env python3
"""The checks in the background against a real Odoo with workers.

Starts Odoo 19 with ``--workers=2 --limit-time-real=20`` on a free loopback
port, against a database it creates with the addon installed, and drives
it over JSON-RPC, as a browser or an integration would. Loopback SMTP
servers run in this process. Each scenario prints one result line; the
exit status is 0 only if all of them passed.

1. The server action on 20 accounts of a silent server with a 15 s time-out
   answers at once, no worker is killed, every account ends with a stored
   failed result, and the progress and the summary reach the bus.
2. The health watch opens one activity per manager when a working account
   breaks, and closes it when the account works again.
3. A queued mail refused with a 4xx reply is retried by the queue and
   delivered once the server accepts again.

    python3 scripts/workers_test.py [--keep-db]

Needs what the Odoo tests need: an importable ``odoo``, PostgreSQL, and
``aiosmtpd``.
"""

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The engine's test servers, imported without the addon (which imports Odoo).
sys.path.insert(0, str(ROOT))

from local_odoo import addons_path

from smtp_engine.tests.servers import (
    LoopbackSmtpServer,
    SilentServer,
    free_port,
    refused_port,
)

LIMIT_TIME_REAL = 20
SILENT_ACCOUNTS = 20
SILENT_TIMEOUT = 15
ADMIN = ("admin", "admin")


def odoo_command():
    """How to start Odoo: odoo-bin where it exists, else ``-m odoo``.

    With workers, Odoo starts its long-polling process by running its own
    command line again, which works with odoo-bin and not with ``-m odoo``.
    """
    import odoo

    odoo_bin = Path(odoo.__path__[0]).resolve().parent / "odoo-bin"
    return [str(odoo_bin)] if odoo_bin.is_file() else ["-m", "odoo"]


class Odoo:
    """One Odoo server process with workers, and JSON-RPC calls to it."""

    def __init__(self, work, database):
        self.work = Path(work)
        self.database = database
        self.port = free_port()
        self.addons = addons_path(work)
        self.log = self.work / "odoo.log"
        self.process = None
        self.uid = None
        self._ids = itertools.count(1)

    def odoo(self, *args):
        return [
            sys.executable,
            *odoo_command(),
            "-d",
            self.database,
            f"--addons-path={self.addons}",
            f"--data-dir={self.work / 'data'}",
            "--http-interface=127.0.0.1",
            f"--http-port={self.port}",
            f"--logfile={self.log}",
            *args,
        ]

    def install(self):
        subprocess.run(
            self.odoo("-i", "email_account", "--stop-after-init"),
            cwd=self.work,
            check=True,
        )

    def start(self):
        self.process = subprocess.Popen(
            self.odoo(
                f"--db-filter=^{self.database}$",
                "--workers=2",
                "--max-cron-threads=1",
                f"--limit-time-real={LIMIT_TIME_REAL}",
            ),
            cwd=self.work,
            # Odoo's log goes to its logfile; this keeps the rest (a
            # long-polling process that cannot start, say) out of the report.
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        give_up = time.monotonic() + 120
        while time.monotonic() < give_up:
            try:
                self.uid = self.rpc("common", "authenticate", self.database, *ADMIN, {})
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("Odoo did not start")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)

    def rpc(self, service, method, *args):
        payload = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": next(self._ids),
            "params": {"service": service, "method": method, "args": list(args)},
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/jsonrpc",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=LIMIT_TIME_REAL * 3) as response:
            answer = json.load(response)
        if "error" in answer:
            raise RuntimeError(json.dumps(answer["error"])[:2000])
        return answer["result"]

    def call(self, model, method, *args, **kwargs):
        return self.rpc(
            "object",
            "execute_kw",
            self.database,
            self.uid,
            ADMIN[1],
            model,
            method,
            list(args),
            kwargs,
        )

    def ref(self, xmlid):
        module, name = xmlid.split(".")
        found = self.call(
            "ir.model.data",
            "search_read",
            [("module", "=", module), ("name", "=", name)],
            fields=["res_id"],
        )
        return found[0]["res_id"]

    def run_cron(self, xmlid):
        """Run a scheduled action now, in this request (after any run of it)."""
        give_up = time.monotonic() + 60
        while True:
            try:
                return self.call("ir.cron", "method_direct_trigger", [self.ref(xmlid)])
            except RuntimeError as exc:
                if "already executing" not in str(exc) or time.monotonic() > give_up:
                    raise
                time.sleep(0.5)

    def killed_workers(self):
        text = self.log.read_text(errors="replace")
        return re.findall(r".*(?:timeout after|killing|Worker .* timeout).*", text)

    def bus_messages(self):
        import psycopg2

        with (
            psycopg2.connect(dbname=self.database) as connection,
            connection.cursor() as cr,
        ):
            cr.execute("SELECT message FROM bus_bus ORDER BY id")
            return [json.loads(row[0]) for row in cr.fetchall()]


def wait_for(condition, seconds, step=0.5):
    give_up = time.monotonic() + seconds
    while time.monotonic() < give_up:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return condition()


def account_values(name, port, **values):
    address = f"{name.lower().replace(' ', '.')}@example.com"
    return {
        "name": name,
        "sender_email": address,
        "username": address,
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        **values,
    }


def scenario_background(odoo, silent):
    ids = odoo.call(
        "email.account",
        "create",
        [
            account_values(
                f"Silent {n:02}",
                silent.port,
                smtp_timeout=SILENT_TIMEOUT,
                health_watch=False,
            )
            for n in range(SILENT_ACCOUNTS)
        ],
    )
    action = odoo.ref("email_account.email_account_action_check_settings")
    started = time.monotonic()
    answer = odoo.call(
        "ir.actions.server",
        "run",
        [action],
        context={"active_model": "email.account", "active_ids": ids},
    )
    answered = time.monotonic() - started

    def all_failed():
        rows = odoo.call("email.account", "read", ids, ["test_state", "check_state"])
        done = all(
            row["test_state"] == "failed" and row["check_state"] == "idle"
            for row in rows
        )
        return rows if done else None

    rows = wait_for(all_failed, 4 * LIMIT_TIME_REAL * SILENT_ACCOUNTS / 8)
    finished = time.monotonic() - started
    payloads = [
        message["payload"]
        for message in odoo.bus_messages()
        if message.get("type") == "simple_notification"
    ]
    progress = [p["message"] for p in payloads if "checked" in p["message"]]
    summaries = [p["title"] for p in payloads if "accounts work" in p["title"]]
    checks = {
        "the request answered within 5 s": answered < 5,
        "it answered 'in the background'": answer["params"]["title"]
        == "Checking in the background",
        "every account has a stored failed result": bool(rows),
        "no worker was killed": not odoo.killed_workers(),
        "progress arrived on the bus": bool(progress),
        "the summary arrived on the bus": summaries
        == [f"0 of {SILENT_ACCOUNTS} accounts work"],
    }
    detail = (
        f"request {answered:.2f} s, all results after {finished:.1f} s, "
        f"progress {progress}, summary {summaries}"
    )
    return checks, detail


def scenario_health(odoo, plain):
    (account,) = odoo.call(
        "email.account", "create", [account_values("Watched", plain.port)]
    )

    def watch(expected):
        odoo.run_cron("email_account.email_account_cron_health_watch")
        return wait_for(
            lambda: odoo.call(
                "email.account",
                "search_count",
                [
                    ("id", "=", account),
                    ("test_state", "=", expected),
                    ("check_state", "=", "idle"),
                ],
            ),
            60,
        )

    def activities():
        return odoo.call(
            "mail.activity",
            "search_read",
            [("res_model", "=", "email.account"), ("res_id", "=", account)],
            fields=["summary", "user_id"],
        )

    first = watch("ok")
    odoo.call("email.account", "write", [account], {"smtp_port": refused_port()})
    broken = watch("failed")
    opened = activities()
    again = watch("failed")
    opened_again = activities()
    odoo.call("email.account", "write", [account], {"smtp_port": plain.port})
    recovered = watch("ok")
    closed = activities()
    checks = {
        "the first watch found it working": bool(first),
        "the broken account failed": bool(broken),
        "one activity was opened for the administrator": len(opened) == 1
        and opened[0]["user_id"][0] == odoo.uid,
        "a second failure opened no other": bool(again) and opened_again == opened,
        "the activity closed when it worked again": bool(recovered) and not closed,
    }
    return checks, f"activity: {opened[0]['summary'] if opened else None}"


def scenario_retry(odoo, plain):
    odoo.call("email.account", "create", [account_values("Retried", plain.port)])
    plain.messages.clear()
    plain.reject_sender = (451, "4.3.0 Try again later")
    (mail,) = odoo.call(
        "mail.mail",
        "create",
        [
            {
                "email_from": "retried@example.com",
                "email_to": "customer@example.org",
                "subject": "Retried",
                "body_html": "<p>Once the server accepts.</p>",
                "auto_delete": False,
            }
        ],
    )
    fields = ["state", "failure_reason", "email_account_retry_count"]

    def read_mail(state):
        (row,) = odoo.call("mail.mail", "read", [mail], fields)
        return row if row["state"] == state else None

    odoo.run_cron("mail.ir_cron_mail_scheduler_action")
    failed = read_mail("exception") or {"state": "not failed", "failure_reason": ""}
    plain.reject_sender = None
    # An hour later, as far as the retry is concerned.
    odoo.call(
        "mail.mail",
        "write",
        [mail],
        {"email_account_retry_date": "2000-01-01 00:00:00"},
    )
    odoo.run_cron("email_account.email_account_cron_retry_mail")
    odoo.run_cron("mail.ir_cron_mail_scheduler_action")
    sent = read_mail("sent") or {"state": "not sent"}
    checks = {
        "the 4xx refusal left the mail failed, to be retried": failed["state"]
        == "exception"
        and failed["email_account_retry_count"] == 1,
        "the reason names the step": "MAIL FROM" in (failed["failure_reason"] or ""),
        "the retry delivered it": sent["state"] == "sent",
        "the server received it once": len(plain.messages) == 1,
    }
    return checks, f"first failure: {(failed['failure_reason'] or '')[:90]!r}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--log", help="keep Odoo's log in this file")
    parser.add_argument(
        "--only", choices=("background", "health watch", "retry"), help="one scenario"
    )
    args = parser.parse_args(argv)
    database = f"email_account_workers_{os.getpid()}"
    failures = 0
    with tempfile.TemporaryDirectory(prefix="email_account_workers_") as work:
        odoo = Odoo(work, database)
        try:
            started = time.monotonic()
            odoo.install()
            print(
                f"installed the addon into {database} in "
                f"{time.monotonic() - started:.0f} s"
            )
            with SilentServer() as silent, LoopbackSmtpServer() as plain:
                odoo.start()
                for name, scenario, server in (
                    ("background", scenario_background, silent),
                    ("health watch", scenario_health, plain),
                    ("retry", scenario_retry, plain),
                ):
                    if args.only and name != args.only:
                        continue
                    started = time.monotonic()
                    checks, detail = scenario(odoo, server)
                    failed = [text for text, ok in checks.items() if not ok]
                    failures += bool(failed)
                    status = "FAIL" if failed else "ok"
                    print(
                        f"{status:4} {name} ({time.monotonic() - started:.1f} s): "
                        f"{len(checks) - len(failed)} of {len(checks)} checks; "
                        f"{detail}"
                    )
                    for text in failed:
                        print(f"     failed: {text}")
        finally:
            odoo.stop()
            if args.log and odoo.log.exists():
                Path(args.log).write_text(odoo.log.read_text(errors="replace"))
            if failures and odoo.log.exists():
                print("Odoo's errors:")
                for line in odoo.log.read_text(errors="replace").splitlines():
                    if re.search(r" (ERROR|CRITICAL) ", line):
                        print("    " + line[:300])
            if not args.keep_db:
                subprocess.run(["dropdb", "--if-exists", database], check=False)
    print("workers test:", "FAILED" if failures else "passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
