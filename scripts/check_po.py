#!/usr/bin/env python3
"""Check what no other tool checks in the translations of the addon.

    python3 scripts/check_po.py [i18n/LANG.po ...]    (default: every i18n/*.po)

Fails, listing each problem, when a catalogue does not parse, when one of its
entries is untranslated or fuzzy, when it lacks a msgid of the template or
holds one the template does not, or when a translation does not keep the
placeholders of its source: ``%s``/``%(name)s`` (Odoo's ``_()``) and
``{name}`` (``str.format``), the positional ones in the same order.
``oca-checks-po`` only checks placeholders on entries flagged
``python-format``, which Odoo 19's exporter never writes, and only that the
translation formats with the source's arguments, so a dropped ``%(name)s``
passes there. The syntax is checked with gettext's ``msgfmt`` where it is
installed (polib reads past an unterminated string).
"""

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parent.parent
POT = ROOT / "i18n" / "email_account.pot"
# No space flag: "50 % sure" holds no placeholder. "%%" is a literal percent.
PLACEHOLDER = re.compile(
    r"%%|%(\([^)]+\))?[#0+-]?\d*(?:\.\d+)?[sdifgeExXrc]|\{\{|\}\}|\{(\w*)\}"
)


def placeholders(text):
    """The positional placeholders in order and the named ones as a count."""
    positional, named = [], Counter()
    for match in PLACEHOLDER.finditer(text):
        token = match[0]
        if token in ("%%", "{{", "}}"):
            continue
        if match[1] or match[2]:
            named[token] += 1
        else:
            positional.append(token)
    return positional, named


def problems_of(path, template_ids):
    # polib reads past some syntax errors (an unterminated string), msgfmt not.
    if shutil.which("msgfmt"):
        msgfmt = subprocess.run(
            ["msgfmt", "--check-header", "-o", os.devnull, str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if msgfmt.returncode:
            return [f"{path}: does not parse: {msgfmt.stderr.strip()}"]
    try:
        catalogue = polib.pofile(str(path))
    except (OSError, ValueError) as exc:
        return [f"{path}: does not parse: {exc}"]
    problems = []
    ids = set()
    for entry in catalogue:
        if entry.obsolete:
            continue
        ids.add(entry.msgid)
        where = f"{path}:{entry.linenum}: {entry.msgid[:60]!r}"
        translations = (
            list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        )
        if entry.fuzzy:
            problems.append(f"{where}: fuzzy")
        if not all(translations):
            problems.append(f"{where}: untranslated")
            continue
        source = placeholders(entry.msgid)
        plural = placeholders(entry.msgid_plural or entry.msgid)
        for text in translations:
            if placeholders(text) not in (source, plural):
                problems.append(f"{where}: placeholders differ in {text[:60]!r}")
    if template_ids is not None:
        for msgid in sorted(template_ids - ids):
            problems.append(f"{path}: missing msgid of the template: {msgid[:60]!r}")
        for msgid in sorted(ids - template_ids):
            problems.append(f"{path}: msgid not in the template: {msgid[:60]!r}")
    return problems


def main(argv):
    paths = [Path(arg) for arg in argv] or sorted((ROOT / "i18n").glob("*.po"))
    template_ids = None
    if POT.exists():
        template_ids = {entry.msgid for entry in polib.pofile(str(POT))}
    if not shutil.which("msgfmt"):
        print("msgfmt (gettext) not found: the syntax is checked by polib only")
    problems = []
    for path in paths:
        found = problems_of(path, template_ids)
        problems += found
        if not found:
            count = len([e for e in polib.pofile(str(path)) if not e.obsolete])
            print(f"{path}: {count} entries, all translated")
    print("\n".join(problems) or "translations: 0 problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
