#!/usr/bin/env python3
"""Regenerate i18n/email_account.pot with Odoo's exporter and merge the .po files.

Given a database where the addon is installed, this runs Odoo's own exporter
(``odoo i18n export``) to rebuild the template, then merges every
``i18n/<lang>.po`` against it the way msgmerge does:

* an entry whose msgid is unchanged keeps its translation;
* a new msgid close to a vanished one gets the old translation as a
  suggestion, marked fuzzy;
* everything else starts untranslated; entries no longer in the template
  stay as obsolete entries (``#~``, ignored by Odoo), so that a text that
  comes back finds its translation again (``--drop-obsolete`` removes them).

Fuzzy and untranslated entries are listed and make the script exit with 1, so
that nothing half-translated is committed unnoticed (check_i18n.py refuses
them as well). Translate them in the .po, remove the fuzzy flag, run again.

    python3 scripts/update_i18n.py -d DB [--odoo-config FILE | --addons-path P]
    python3 scripts/update_i18n.py --merge-only     # the .pot is already fresh
"""

import argparse
import difflib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parent.parent
MODULE = "email_account"
I18N = ROOT / "i18n"
POT = I18N / f"{MODULE}.pot"
# Similarity above which a vanished translation is offered for a new msgid.
FUZZY_RATIO = 0.8
PLURAL_FORMS = {"el": "nplurals=2; plural=(n != 1);"}
DATE_LINE = re.compile(
    r'^"(POT-Creation-Date|PO-Revision-Date): .*\\n"\n', re.MULTILINE
)


def without_dates(text):
    """The catalogue text without the header lines that change on every export."""
    return DATE_LINE.sub("", text)


def odoo_addons_folders():
    """Odoo's own addons folders, next to the importable odoo package."""
    spec = importlib.util.find_spec("odoo")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("odoo is not importable; give --addons-path")
    candidates = []
    for package in spec.submodule_search_locations:
        candidates += [Path(package, "addons"), Path(package).parent / "addons"]
    return [
        str(path)
        for path in dict.fromkeys(candidates)
        if (path / "base").is_dir() or (path / "mail").is_dir()
    ]


def export_pot(db, target, config=None, addons_path=None):
    """Write the template of the addon, as exported by Odoo from ``db``, to target."""
    with tempfile.TemporaryDirectory(prefix="update_i18n_") as tmp:
        command = [sys.executable, "-m", "odoo", "i18n", "export", "-d", db]
        if not config:
            # Odoo finds a module by its folder name: expose the repository
            # under the module's name, whatever the checkout is called.
            addons = Path(tmp) / "addons"
            addons.mkdir()
            (addons / MODULE).symlink_to(ROOT, target_is_directory=True)
            paths = addons_path or os.environ.get("ODOO_ADDONS_PATH")
            paths = paths.split(",") if paths else odoo_addons_folders()
            paths = [p for p in paths if Path(p, MODULE).resolve() != ROOT]
            config = Path(tmp) / "odoo.conf"
            config.write_text(
                "[options]\naddons_path = {}\n".format(",".join([*paths, str(addons)]))
            )
        command += ["-c", str(config), "-l", "pot", "-o", str(target), MODULE]
        # Run outside the repository so that its folders shadow no package.
        done = subprocess.run(
            command, cwd=tmp, capture_output=True, text=True, check=False
        )
    log = done.stdout + done.stderr
    if done.returncode or not Path(target).exists() or "Failed to extract" in log:
        raise RuntimeError(
            f"{' '.join(command)} (exit {done.returncode}):\n{log[-3000:]}"
        )


def merge(po_path, pot, keep_obsolete=True):
    """Merge one .po with the template.

    Returns the merged catalogue, the entries that need a translator and the
    msgids that left the template (kept as obsolete entries unless
    ``keep_obsolete`` is false, so that a text that comes back finds its
    translation again, as with msgmerge).
    """
    old = polib.pofile(str(po_path)) if po_path.exists() else polib.POFile()
    live = {entry.msgid: entry for entry in old if not entry.obsolete}
    obsolete = {entry.msgid: entry for entry in old if entry.obsolete}
    pot_ids = {entry.msgid for entry in pot}
    vanished = [msgid for msgid in live if msgid not in pot_ids]
    lang = po_path.stem

    new = polib.POFile(wrapwidth=78)
    new.header = pot.header
    new.metadata = dict(pot.metadata)
    new.metadata.update(
        {
            "Last-Translator": old.metadata.get("Last-Translator", ""),
            "Language-Team": old.metadata.get("Language-Team", ""),
            "Language": lang,
            "Plural-Forms": old.metadata.get("Plural-Forms")
            or PLURAL_FORMS.get(lang, ""),
        }
    )
    todo = []
    reused = set()
    for template in pot:
        entry = polib.POEntry(
            msgid=template.msgid,
            msgid_plural=template.msgid_plural,
            msgstr="",
            occurrences=list(template.occurrences),
            comment=template.comment,
            flags=[flag for flag in template.flags if flag != "fuzzy"],
        )
        if template.msgid_plural:
            entry.msgstr_plural = dict.fromkeys(range(2), "")
        previous = live.get(template.msgid) or obsolete.get(template.msgid)
        if previous is None:
            close = difflib.get_close_matches(template.msgid, vanished, 1, FUZZY_RATIO)
            if close:
                previous = live[close[0]]
                entry.flags.append("fuzzy")
                entry.previous_msgid = previous.msgid
        elif previous.fuzzy:
            entry.flags.append("fuzzy")
        if previous is not None:
            reused.add(previous.msgid)
            entry.msgstr = previous.msgstr
            entry.tcomment = previous.tcomment
            if template.msgid_plural and previous.msgstr_plural:
                entry.msgstr_plural = dict(previous.msgstr_plural)
        translated = entry.msgstr or (
            entry.msgstr_plural and all(entry.msgstr_plural.values())
        )
        if entry.fuzzy or not translated:
            todo.append(entry)
        new.append(entry)
    dropped = [msgid for msgid in vanished if msgid not in reused]
    if keep_obsolete:
        for msgid in [*dropped, *obsolete]:
            if msgid in pot_ids:
                continue
            entry = live.get(msgid) or obsolete[msgid]
            entry.obsolete = True
            entry.occurrences = []
            new.append(entry)
    new.save(str(po_path))
    return new, todo, dropped


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-d", "--database", help="a database with the addon installed")
    parser.add_argument("--odoo-config", help="Odoo configuration file to use")
    parser.add_argument("--addons-path", help="Odoo's addons folders, comma separated")
    parser.add_argument(
        "-l",
        "--lang",
        action="append",
        default=["el"],
        help="also create i18n/LANG.po if missing (el is always kept)",
    )
    parser.add_argument(
        "--drop-obsolete",
        action="store_true",
        help="remove the translations of texts that left the template",
    )
    parser.add_argument(
        "--merge-only",
        action="store_true",
        help="keep the committed .pot and only merge the .po files against it",
    )
    args = parser.parse_args(argv)
    if not args.merge_only and not args.database:
        parser.error("give -d DATABASE, or --merge-only")

    I18N.mkdir(exist_ok=True)
    if not args.merge_only:
        with tempfile.TemporaryDirectory(prefix="update_i18n_") as tmp:
            fresh = Path(tmp) / POT.name
            export_pot(args.database, fresh, args.odoo_config, args.addons_path)
            unchanged = POT.exists() and without_dates(
                POT.read_text(encoding="utf-8")
            ) == without_dates(fresh.read_text(encoding="utf-8"))
            if not unchanged:
                shutil.copyfile(fresh, POT)
        print(f"{POT.relative_to(ROOT)}: {'unchanged' if unchanged else 'rewritten'}")
    pot = polib.pofile(str(POT))

    status = 0
    po_paths = {*I18N.glob("*.po"), *(I18N / f"{lang}.po" for lang in args.lang)}
    for po_path in sorted(po_paths):
        new, todo, dropped = merge(po_path, pot, not args.drop_obsolete)
        name = po_path.relative_to(ROOT)
        entries = len([entry for entry in new if not entry.obsolete])
        print(
            f"{name}: {entries} entries, {entries - len(todo)} translated, "
            f"{len([e for e in todo if e.fuzzy])} fuzzy, "
            f"{len([e for e in todo if not e.fuzzy])} untranslated, "
            f"{len(dropped)} no longer in the template"
        )
        for entry in todo:
            state = "fuzzy" if entry.fuzzy else "untranslated"
            print(f"  {state}: {entry.msgid!r}")
        for msgid in dropped:
            print(f"  obsolete: {msgid!r}")
        if todo:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
