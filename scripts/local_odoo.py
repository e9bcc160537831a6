"""What the scripts that run Odoo here share: addons path, configuration, stop.

The demo, the screenshots, the workers test, the leak check and the
benchmarks each run Odoo with this checkout, from a work folder of their
own. This module imports no Odoo: Odoo runs in child processes, and so does
``ci_tools.py addons-path``, which finds Odoo's addons folders.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def addons_path(folder):
    """Odoo's addons folders and ``folder``/addons, holding this checkout.

    Odoo finds a module by its folder's name, and the checkout's may be any:
    ``folder``/addons/email_account is a link to it. Odoo's own folders are
    ``ODOO_ADDONS_PATH``, or else the ones next to the importable odoo.
    """
    addons = Path(folder) / "addons"
    addons.mkdir(parents=True, exist_ok=True)
    link = addons / "email_account"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(ROOT)
    odoo_addons = (
        os.environ.get("ODOO_ADDONS_PATH")
        or subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "ci_tools.py"), "addons-path"],
            check=True,
            capture_output=True,
            text=True,
            cwd=folder,
        ).stdout.strip()
    )
    return f"{odoo_addons},{addons}"


def write_config(path, *, addons, data_dir, db, port, **options):
    """Odoo's configuration file: database ``db`` alone, on 127.0.0.1:``port``."""
    values = {
        "addons_path": addons,
        "data_dir": data_dir,
        "db_name": db,
        "dbfilter": f"^{db}$",
        "list_db": False,
        "http_interface": "127.0.0.1",
        "http_port": port,
        **options,
    }
    Path(path).write_text(
        "[options]\n" + "".join(f"{name} = {value}\n" for name, value in values.items())
    )


def odoo_command(config, *args):
    return [sys.executable, "-m", "odoo", "-c", str(config), *args]


def wait_until_serving(process, url, stopping=None, seconds=180):
    """Wait until Odoo answers at ``url``; return why it will not, if so.

    Returns None once Odoo answers, or once the event ``stopping`` is set.
    """
    deadline = time.monotonic() + seconds
    while not (stopping and stopping.is_set()):
        if process.poll() is not None:
            return f"Odoo stopped (exit {process.returncode})"
        if time.monotonic() > deadline:
            return f"Odoo did not answer in {seconds // 60} minutes"
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/web/login", timeout=5),
        ):
            return None
        time.sleep(0.5)
    return None


def stop_process_group(process, seconds):
    """SIGTERM to the process's group, and SIGKILL if it is not gone in time."""
    for signum, wait in ((signal.SIGTERM, seconds), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait)
            break
