#!/usr/bin/env python3
"""Small helpers for scripts/run-tests and scripts/run-odoo.

ci_tools.py addons-path              Odoo's addons folders, comma separated
ci_tools.py has-module NAME PATHS    exit 0 when an addons folder has NAME
ci_tools.py free-port                a free TCP port on 127.0.0.1
ci_tools.py count pytest|odoo FILE   "passed failed" read from a test log
ci_tools.py failed-tests FILE        the tests an Odoo log reports as failed
"""

import os
import re
import socket
import sys
from pathlib import Path

# "... ERROR db odoo.addons.base.tests.test_x: FAIL: TestX.test_y" and the
# same with "ERROR: " (an exception), "Subtest ..." or "setUpClass (...)".
FAILED_TEST = re.compile(
    r"^\S+ \S+ \d+ (?:ERROR|CRITICAL) \S+ (?:odoo\.addons\.)?([\w.]+): "
    r"(?:FAIL|ERROR): (.+?)\s*$"
)


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


def failed_tests(path):
    """Print 'module.tests.file: Class.test' for each failed or erroring test."""
    found = set()
    for line in Path(path).read_text(errors="replace").splitlines():
        match = FAILED_TEST.match(line)
        if match:
            found.add(f"{match[1]}: {match[2]}")
    for name in sorted(found):
        print(name)


def main(argv):
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command == "addons-path":
        addons_path()
    elif command == "has-module":
        return 0 if has_module(*args) else 1
    elif command == "free-port":
        free_port()
    elif command == "count":
        count(*args)
    elif command == "failed-tests":
        failed_tests(*args)
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
