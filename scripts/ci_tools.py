#!/usr/bin/env python3
"""Small helpers for scripts/run-tests.

ci_tools.py addons-path              Odoo's addons folders, comma separated
ci_tools.py has-module NAME PATHS    exit 0 when an addons folder has NAME
ci_tools.py free-port                a free TCP port on 127.0.0.1
ci_tools.py count pytest|odoo FILE   "passed failed" read from a test log
ci_tools.py checklog FILE            fail on ERROR/CRITICAL/WARNING lines
ci_tools.py check-files              XML, CSV and PO files are well formed
"""

import csv
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Log lines that Odoo itself writes on a healthy run of this machine setup and
# that say nothing about the addon (as checklog-odoo's ignore list does).
LOG_IGNORE = [
    r"Running as user 'root' is a security risk",
    r"odoo\.tools\.config: missing --http-interface",
    r"odoo\.tests\.result: 0 failed, 0 error\(s\)",
    # Core mail modules warn about the missing default sender on fresh DBs.
    r"odoo\.addons\.base\.models\.ir_mail_server: The from filter of the CLI",
    r"odoo\.addons\.base\.models\.ir_mail_server: No mail server matches",
]
LOG_LEVELS = re.compile(r"^\S+ \S+ \d+ (ERROR|CRITICAL|WARNING) ")


def addons_path():
    """Folders next to the importable odoo package that hold addons."""
    import odoo

    candidates = []
    for package_dir in odoo.__path__:
        package_dir = Path(package_dir)
        candidates += [package_dir / "addons", package_dir.parent / "addons"]
    found = [
        str(path)
        for path in candidates
        if (path / "base" / "__manifest__.py").exists()
        or (path / "mail" / "__manifest__.py").exists()
    ]
    if not found:
        sys.exit("no Odoo addons folder found; set ODOO_ADDONS_PATH")
    print(",".join(dict.fromkeys(found)))


def has_module(name, paths):
    return any((Path(p) / name / "__manifest__.py").exists() for p in paths.split(","))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        print(sock.getsockname()[1])


def count(kind, path):
    """Print 'passed failed' for a pytest summary or an Odoo test log."""
    text = Path(path).read_text(errors="replace") if os.path.exists(path) else ""
    if kind == "pytest":
        numbers = {
            word: int(number)
            for number, word in re.findall(r"(\d+) (passed|failed|error|errors)", text)
        }
        failed = numbers.get("failed", 0) + numbers.get("error", 0)
        failed += numbers.get("errors", 0)
        print(numbers.get("passed", 0), failed)
        return
    passed = failed = 0
    for line in text.splitlines():
        match = re.search(
            r"odoo\.tests\.result: (\d+) failed, (\d+) error\(s\) of (\d+) tests", line
        )
        if match:
            bad = int(match[1]) + int(match[2])
            failed += bad
            passed += int(match[3]) - bad
    if not passed and not failed and "odoo.tests.result" not in text:
        # The run died before its report: count it as one failure.
        failed = 1
    print(passed, failed)


def checklog(path):
    problems = []
    for line in Path(path).read_text(errors="replace").splitlines():
        if LOG_LEVELS.match(line) and not any(re.search(p, line) for p in LOG_IGNORE):
            problems.append(line)
    for line in problems[:50]:
        print(line)
    if problems:
        print(f"{path}: {len(problems)} ERROR/WARNING line(s)")
        return False
    return True


def check_files():
    import polib
    from lxml import etree

    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    problems = []
    counts = {"xml": 0, "csv": 0, "po": 0}
    for name in tracked:
        path = ROOT / name
        if not path.exists():
            continue
        suffix = path.suffix.lstrip(".")
        if suffix == "xml":
            counts["xml"] += 1
            try:
                etree.parse(str(path))
            except etree.XMLSyntaxError as exc:
                problems.append(f"{name}: {exc}")
        elif suffix == "csv":
            counts["csv"] += 1
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.reader(handle))
            width = len(rows[0]) if rows else 0
            if not rows or any(len(row) != width for row in rows):
                problems.append(f"{name}: rows of unequal length")
            if name.endswith("ir.model.access.csv"):
                ids = [row[0] for row in rows[1:]]
                if len(ids) != len(set(ids)):
                    problems.append(f"{name}: duplicate ids")
        elif suffix in ("po", "pot"):
            counts["po"] += 1
            try:
                polib.pofile(str(path))
            except (OSError, ValueError) as exc:
                problems.append(f"{name}: {exc}")
            msgfmt = (
                subprocess.run(
                    ["msgfmt", "--check-format", "-o", os.devnull, str(path)],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if _has("msgfmt")
                else None
            )
            if msgfmt and msgfmt.returncode:
                problems.append(f"{name}: {msgfmt.stderr.strip()}")
    for problem in problems:
        print(problem)
    print(
        f"files: {counts['xml']} XML, {counts['csv']} CSV, {counts['po']} PO/POT; "
        f"{len(problems)} problem(s)"
    )
    return not problems


def _has(program):
    return any(
        os.access(os.path.join(folder, program), os.X_OK)
        for folder in os.environ.get("PATH", "").split(os.pathsep)
    )


def main(argv):
    command, args = argv[0], argv[1:]
    if command == "addons-path":
        addons_path()
    elif command == "has-module":
        return 0 if has_module(*args) else 1
    elif command == "free-port":
        free_port()
    elif command == "count":
        count(*args)
    elif command == "checklog":
        return 0 if checklog(*args) else 1
    elif command == "check-files":
        return 0 if check_files() else 1
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
