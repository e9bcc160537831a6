"""The package: ``pip wheel .`` gives an addon Odoo finds, and no tooling.

pip builds ``pip install git+<URL>`` in a temporary folder of another name,
so the wheel is built here from a copy of the checkout in such a folder.
Needs pip, PyPI or a mirror for the build backend, and an importable Odoo 19
for the installation test.
"""

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "odoo/addons/email_account/"
TOOLING = (
    ".ci/",
    "scripts/",
    "benchmarks/",
    "readme/",
    "pyproject.toml",
    "hatch_build.py",
    ".pylintrc-mandatory",
    ".gitignore",
)


def _odoo_importable():
    probe = [sys.executable, "-c", "import odoo.release"]
    return (
        subprocess.run(probe, check=False, cwd="/", capture_output=True).returncode == 0
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """Build the wheel from the checkout's files in a folder named otherwise."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "pip-req-build-x1y2z3"
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "--disable-pip-version-check",
            str(source),
            "-w",
            str(base / "dist"),
        ],
        check=True,
        cwd=base,
    )
    (path,) = (base / "dist").glob("*.whl")
    return path


def _manifest():
    return ast.literal_eval((ROOT / "__manifest__.py").read_text())


def test_wheel_is_named_after_the_addon_not_the_folder(wheel):
    assert wheel.name.startswith("odoo_addon_email_account-19.0.")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert all(
        name.startswith((PREFIX, "odoo_addon_email_account-")) for name in names
    ), [n for n in names if not n.startswith(PREFIX)][:5]


def test_wheel_holds_every_file_the_manifest_lists(wheel):
    manifest = _manifest()
    listed = manifest["data"] + manifest.get("demo", [])
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    missing = [path for path in listed if PREFIX + path not in names]
    assert not missing
    for needed in (
        "__manifest__.py",
        "__init__.py",
        "static/description/icon.png",
        "static/description/index.html",
        "i18n/el.po",
    ):
        assert PREFIX + needed in names


def test_wheel_holds_none_of_the_tooling(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    shipped = [name[len(PREFIX) :] for name in names if name.startswith(PREFIX)]
    assert not [name for name in shipped if name.startswith(TOOLING)]
    assert "odoo/__init__.py" not in names and "odoo/addons/__init__.py" not in names


def test_wheel_declares_the_manifest_dependencies(wheel):
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith("/METADATA")]
        text = archive.read(metadata).decode()
    assert f"Version: {_manifest()['version']}" in text
    assert "Requires-Dist: odoo==19.0.*" in text
    assert "Requires-Dist: dnspython" in text


@pytest.mark.skipif(not _odoo_importable(), reason="Odoo 19 is not importable")
def test_installed_wheel_is_where_odoo_finds_the_addon(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
        check=True,
    )
    python = venv / "bin" / "python"
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--disable-pip-version-check",
            str(wheel),
        ],
        check=True,
    )
    found = subprocess.run(
        [
            python,
            "-c",
            (
                "from odoo.modules.module import get_module_path, Manifest\n"
                "print(get_module_path('email_account'))\n"
                "print(Manifest.for_addon('email_account')['name'])"
            ),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd="/",
    ).stdout.split("\n")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert found[0] == f"{site}/odoo/addons/email_account"
    assert found[1] == "Email Accounts"
