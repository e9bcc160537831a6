"""scripts/setup: the first command of the README, up to starting the demo.

Each test gives the set-up a virtual environment of its own (never the
checkout's .venv). The test from an Odoo source tree runs when
EMAIL_ACCOUNT_TEST_ODOO_SRC names one; it installs Odoo's requirements from
PyPI (PIP_CACHE_DIR keeps the built wheels between runs, so later runs
download and build nothing).
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "scripts" / "setup"


def _odoo_file(python):
    """The release.py of the Odoo that ``python`` imports, or None."""
    probe = [python, "-c", "import odoo.release as r; print(r.__file__)"]
    done = subprocess.run(probe, check=False, cwd="/", capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def _setup(venv, timeout=3600, **environ):
    env = dict(os.environ, EMAIL_ACCOUNT_VENV=str(venv), **environ)
    if "ODOO_SRC" not in environ:
        env.pop("ODOO_SRC", None)
    started = time.monotonic()
    done = subprocess.run(
        [str(SETUP), "--no-start"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done, time.monotonic() - started


@pytest.mark.skipif(not _odoo_file(sys.executable), reason="Odoo is not importable")
def test_setup_uses_the_importable_odoo_without_changing_it(tmp_path):
    venv = tmp_path / "venv"
    done, _seconds = _setup(venv, PYTHON=sys.executable)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _odoo_file(str(venv / "bin" / "python")) == _odoo_file(sys.executable)
    # The test tools are in the environment, run through its Python.
    tools = [venv / "bin" / "python", "-m", "ruff", "--version"]
    assert subprocess.run(tools, check=False, capture_output=True).returncode == 0


@pytest.mark.skipif(not _odoo_file(sys.executable), reason="Odoo is not importable")
def test_second_setup_only_checks(tmp_path):
    venv = tmp_path / "venv"
    first, _seconds = _setup(venv, PYTHON=sys.executable)
    assert first.returncode == 0, first.stdout + first.stderr
    second, seconds = _setup(venv, PYTHON=sys.executable)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "set up by an earlier run" in second.stdout
    assert "Installing" not in second.stdout
    assert seconds < 30


def test_failed_clone_says_what_to_do(tmp_path):
    # A Python that imports no Odoo, so that the set-up has to clone it.
    bare = tmp_path / "bare"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True
    )
    venv = tmp_path / "venv"
    done, _seconds = _setup(
        venv,
        timeout=120,
        PYTHON=str(bare / "bin" / "python"),
        # Nothing listens there: the clone fails at once, as without network.
        EMAIL_ACCOUNT_ODOO_REPOSITORY="https://127.0.0.1:9/odoo",
    )
    assert done.returncode == 1
    assert "Could not clone Odoo 19.0 from https://127.0.0.1:9/odoo" in done.stderr
    assert (
        "git clone --depth 1 --branch 19.0 https://github.com/odoo/odoo" in done.stderr
    )
    assert "ODOO_SRC=/path/to/odoo19 scripts/setup" in done.stderr
    assert not (venv / "src" / "odoo").exists()


@pytest.mark.skipif(
    not os.environ.get("EMAIL_ACCOUNT_TEST_ODOO_SRC"),
    reason="EMAIL_ACCOUNT_TEST_ODOO_SRC names no Odoo 19 source tree",
)
def test_setup_from_an_odoo_tree_makes_a_working_environment(tmp_path):
    source = os.environ["EMAIL_ACCOUNT_TEST_ODOO_SRC"]
    venv = tmp_path / "venv"
    done, seconds = _setup(venv, ODOO_SRC=source)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    python = str(venv / "bin" / "python")
    # Its own environment, not one that sees the system's packages.
    config = (venv / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in config
    assert _odoo_file(python) == f"{Path(source).resolve()}/odoo/release.py"
    # Odoo's command line and its compiled requirements work in it.
    version = subprocess.run(
        [python, "-m", "odoo", "--version"],
        check=True,
        capture_output=True,
        text=True,
        cwd="/",
    ).stdout
    assert version.startswith("Odoo Server 19.0")
    imports = "import psycopg2, ldap, lxml, odoo.addons.base.models.ir_mail_server"
    subprocess.run([python, "-c", imports], check=True, cwd="/")
    print(f"set-up from {source}: {seconds:.0f} s")
