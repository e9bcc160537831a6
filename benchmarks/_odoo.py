"""What the Odoo benchmark scripts share: databases and an Odoo in-process.

Databases are made by Odoo's own command line (``-i ... --stop-after-init``),
as an administrator would, and copied with ``createdb -T``; every database a
script makes is dropped when it ends, whatever happens. The measured work
then runs in the script's own process through Odoo's registry and cursors,
committed as a server would commit it, so that the clocks and the loopback
servers are in the same process as the code they time.
"""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from local_odoo import addons_path

ADMIN_UID = 2


def odoo_missing():
    """Why the Odoo benchmarks cannot run here, or None if they can."""
    try:
        import odoo  # noqa: F401
    except ImportError as exc:
        return f"Odoo is not importable ({exc})"
    if not shutil.which("createdb") or not shutil.which("dropdb"):
        return "PostgreSQL's createdb and dropdb are not on the PATH"
    return None


def skip_without_odoo(name):
    """Print why and exit with status 0 where Odoo is not available."""
    reason = odoo_missing()
    if reason:
        print(f"{name}: not run: {reason}.")
        sys.exit(0)


class OdooBench:
    """A work folder, the databases made in it, and Odoo loaded in-process.

    Use it as a context manager: on exit the in-process registries are
    closed and every database made through it is dropped.
    """

    def __init__(self, prefix):
        self.prefix = f"{prefix}_{os.getpid()}"
        self.databases = []
        self._work = None
        self.work = None
        self.addons = None
        self._loaded = False

    def __enter__(self):
        self._work = tempfile.TemporaryDirectory(prefix=f"{self.prefix}_")
        self.work = Path(self._work.name)
        self.addons = addons_path(self.work)
        return self

    def __exit__(self, *exc_info):
        try:
            for name in reversed(self.databases):
                self.drop(name)
        finally:
            self._work.cleanup()

    def name(self, label):
        return f"{self.prefix}_{label}"

    def odoo_args(self, database):
        return [
            "-d",
            database,
            f"--addons-path={self.addons}",
            f"--data-dir={self.work / 'data'}",
            "--http-interface=127.0.0.1",
            "--log-level=warn",
            f"--logfile={self.work / 'odoo.log'}",
        ]

    def install(self, database, modules, template=None):
        """Install ``modules`` into ``database``; return the seconds it took.

        Without ``template`` Odoo creates the database; with one, the
        database is first copied from it (not timed).
        """
        if template:
            subprocess.run(["createdb", "-T", template, database], check=True)
        self.databases.append(database)
        command = [
            sys.executable,
            "-m",
            "odoo",
            *self.odoo_args(database),
            "-i",
            modules,
            "--stop-after-init",
        ]
        started = time.perf_counter()
        run = subprocess.run(
            command, check=False, cwd=self.work, capture_output=True, text=True
        )
        seconds = time.perf_counter() - started
        if run.returncode:
            sys.stderr.write(run.stdout + run.stderr)
            raise SystemExit(f"installing {modules} into {database} failed")
        return seconds

    def copy(self, template, database):
        subprocess.run(["createdb", "-T", template, database], check=True)
        self.databases.append(database)

    def drop(self, database):
        if self._loaded:
            from odoo import sql_db
            from odoo.modules.registry import Registry

            Registry.delete(database)
            sql_db.close_db(database)
        subprocess.run(
            ["dropdb", "--if-exists", "--force", database],
            check=False,
            stderr=subprocess.DEVNULL,
        )
        with contextlib.suppress(ValueError):
            self.databases.remove(database)

    def registry(self, database):
        """Odoo's registry of ``database``, in this process."""
        if not self._loaded:
            from odoo.tools import config

            config.parse_config(
                [
                    f"--addons-path={self.addons}",
                    f"--data-dir={self.work / 'data'}",
                    "--log-level=warn",
                    f"--logfile={self.work / 'odoo-inprocess.log'}",
                ],
                setup_logging=True,
            )
            self._loaded = True
        from odoo.modules.registry import Registry

        return Registry(database)

    @contextlib.contextmanager
    def env(self, registry, uid=ADMIN_UID, context=None):
        """An environment on a new cursor, committed at the end."""
        from odoo import api

        with registry.cursor() as cr:
            yield api.Environment(cr, uid, context or {})


def run_cron(env, cron_id):
    """Run a scheduled action as the cron worker would; stop if it failed.

    ``method_direct_trigger`` runs the job in a cursor of its own, as its
    own user, and answers an error as an action rather than raising it.
    """
    answer = env["ir.cron"].browse(cron_id).method_direct_trigger()
    if isinstance(answer, dict) and answer.get("tag") == "display_exception":
        cause = answer["params"]["data"]
        raise SystemExit(f"the scheduled action failed: {cause.get('message')}")


CHECK_ACTION = "email_account.email_account_action_check_settings"
RUN_CHECKS = "email_account.email_account_cron_run_checks"


def check_until_stored(bench, registry, ids):
    """Check the accounts ``ids`` as a user does, until each result is stored.

    The server action "Check Account Settings" runs as the administrator in
    one committed transaction; then the scheduled action that runs the
    checks, as the cron worker runs it, again until every account has a
    result. Return ``(answered, finished, runs)``: when the request answered
    and when the last result was stored (``time.perf_counter()``), and how
    many runs of the scheduled action that took.
    """
    with bench.env(registry) as env:
        action = env.ref(CHECK_ACTION).id
        cron = env.ref(RUN_CHECKS).id
    with bench.env(registry, context={"lang": "en_US"}) as env:
        env["ir.actions.server"].browse(action).with_context(
            active_model="email.account", active_ids=ids, active_id=ids[0]
        ).run()
    answered = time.perf_counter()
    runs = 0
    while True:
        with bench.env(registry) as env:
            done = env["email.account"].search_count(
                [
                    ("id", "in", ids),
                    ("test_date", "!=", False),
                    ("check_state", "=", "idle"),
                ]
            )
            if done == len(ids):
                return answered, time.perf_counter(), runs
            if runs > 2 * len(ids):
                raise SystemExit("the checks did not end")
            run_cron(env, cron)
            runs += 1
