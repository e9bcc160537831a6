#!/usr/bin/env python3
"""Check that the addon's translation catalogues are complete and current.

Runs without Odoo (plain Python and polib) and fails, listing every problem,
when:

* a .po or the .pot does not parse;
* an entry of a .po is untranslated or fuzzy;
* a translation does not keep the placeholders of its source (``%s``,
  ``%(name)s``, ``{name}``; every plural form too) or its XML tags;
* a .po and the .pot do not hold the same entries (run update_i18n.py);
* the .pot is stale: a text the addon shows is not one of its msgids. The
  texts are found statically: ``_()``, ``self.env._()`` and ``_lt()`` literals
  in the Python code, field labels, help texts, selection labels, constraint
  messages and model descriptions, and the translatable texts of the XML data
  (view attributes and text nodes, menus, actions, groups, templates).

With ``--odoo-db DB`` (Odoo importable, the addon installed in DB) it also
regenerates the .pot with Odoo's own exporter and fails if it differs from the
committed one, dates aside.

    python3 scripts/check_i18n.py
    python3 scripts/check_i18n.py --odoo-db DB [--odoo-config FILE]
"""

import argparse
import ast
import os
import re
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from xml.sax.saxutils import escape

import polib

ROOT = Path(__file__).resolve().parent.parent
MODULE = "email_account"
I18N = ROOT / "i18n"
POT = I18N / f"{MODULE}.pot"

# Never part of the catalogue: tests and benchmarks only talk to developers.
SKIPPED_DIRS = {"tests", "benchmarks", "__pycache__", "node_modules"}
XML_DIRS = ("views", "data", "security")

# Python's %-formatting (no space flag: "50 % sure" is no placeholder) and
# str.format fields; "%%", "{{" and "}}" are literal characters.
PRINTF = re.compile(r"%(?:\([^)]+\))?[#0+-]?(?:\d+|\*)?(?:\.\d+)?[sdifgeErxXc]")
BRACES = re.compile(r"\{[A-Za-z_0-9]*(?:[.\[][^{}]*)?(?:![rsa])?(?::[^{}]*)?\}")
TAG = re.compile(r"</?([A-Za-z][\w:-]*)")

# Translatable attributes and inline elements of Odoo 19
# (odoo/tools/translate.py: TRANSLATED_ATTRS, TRANSLATED_ELEMENTS).
TRANSLATED_ATTRS = {
    "string",
    "add-label",
    "help",
    "sum",
    "avg",
    "confirm",
    "placeholder",
    "alt",
    "title",
    "aria-label",
    "aria-keyshortcuts",
    "aria-placeholder",
    "aria-roledescription",
    "aria-valuetext",
    "value_label",
    "data-tooltip",
    "label",
    "confirm-label",
    "confirm-title",
    "cancel-label",
}
TRANSLATED_ELEMENTS = {
    "abbr", "b", "bdi", "bdo", "br", "cite", "code", "data", "del", "dfn", "em",
    "font", "i", "ins", "kbd", "keygen", "mark", "math", "meter", "output",
    "progress", "q", "ruby", "s", "samp", "small", "span", "strong", "sub",
    "sup", "time", "u", "var", "wbr", "text", "select", "option",
}  # fmt: skip
# <attribute> of an inherited view holds an attribute's value, not text: it is
# a term only for a translatable attribute (see record_terms).
SKIPPED_ELEMENTS = {"script", "style", "title", "attribute"}

# Translatable fields of the records an addon usually defines in XML. Record
# rules are absent on purpose: ir.rule.name is not translatable in Odoo 19.
RECORD_FIELDS = {
    "ir.actions.act_window": {"name": "text", "help": "html"},
    "ir.actions.server": {"name": "text"},
    "ir.actions.client": {"name": "text", "help": "html"},
    "ir.actions.act_url": {"name": "text"},
    "ir.actions.report": {"name": "text"},
    "ir.cron": {"name": "text", "cron_name": "text"},
    "ir.ui.menu": {"name": "text"},
    "res.groups": {"name": "text", "comment": "text"},
    "res.groups.privilege": {"name": "text", "description": "text"},
    "ir.module.category": {"name": "text", "description": "text"},
    "mail.template": {"subject": "text", "body_html": "html", "description": "text"},
    "mail.message.subtype": {"name": "text", "description": "text"},
    "mail.activity.type": {"name": "text", "summary": "text"},
}
ACTION_TAGS = {"act_window": "ir.actions.act_window", "report": "ir.actions.report"}

# Position of the label among the positional arguments of a field.
LABEL_POSITION = {
    "Many2one": 1,
    "Selection": 1,
    "Reference": 1,
    "One2many": 2,
    "Many2many": 4,
}


def normalize(text):
    """Whitespace-insensitive form of a term, as layout must not matter."""
    return " ".join(text.split())


def placeholders(text):
    return Counter(PRINTF.findall(text.replace("%%", ""))) + Counter(
        BRACES.findall(text.replace("{{", "").replace("}}", ""))
    )


def tags(text):
    return sorted(TAG.findall(text))


def pushable(term):
    """Odoo drops terms such as ':' or '...' (odoo.tools.translate._push)."""
    term = (term or "").strip()
    return len(term) > 8 or any(char.isalpha() for char in term)


# ---------------------------------------------------------------- catalogues


def load_catalogue(path, problems):
    try:
        return polib.pofile(str(path), check_for_duplicates=True)
    except (OSError, ValueError) as exc:
        problems.append(f"{rel(path)}: does not parse: {exc}")
        return None


def check_entry(po_name, entry, problems):
    """Problems of one translated entry; returns True when it is translated."""
    where = f"{po_name}:{entry.linenum}"
    label = shorten(entry.msgid)
    if entry.fuzzy:
        problems.append(f"{where}: fuzzy entry {label}")
    if entry.msgid_plural:
        forms = [(i, text) for i, text in sorted(entry.msgstr_plural.items())]
        if not forms or not all(text for _i, text in forms):
            problems.append(f"{where}: untranslated plural form of {label}")
            return False
        for index, text in forms:
            source = entry.msgid if index == 0 else entry.msgid_plural
            compare(where, label, source, text, problems, f"plural form {index}")
        return not entry.fuzzy
    if not entry.msgstr:
        problems.append(f"{where}: untranslated {label}")
        return False
    compare(where, label, entry.msgid, entry.msgstr, problems, "translation")
    return not entry.fuzzy


def compare(where, label, source, text, problems, what):
    expected, found = placeholders(source), placeholders(text)
    if expected != found:
        problems.append(
            f"{where}: {what} of {label} has placeholders "
            f"{sorted(found.elements())}, the source has {sorted(expected.elements())}"
        )
    if tags(source) != tags(text):
        problems.append(
            f"{where}: {what} of {label} has the XML tags {tags(text)}, "
            f"the source has {tags(source)}"
        )


def entry_key(entry):
    return (entry.msgctxt, entry.msgid)


def check_catalogues(problems):
    """Parse the .pot and every .po; return counts for the summary."""
    counts = {"entries": 0, "translated": {}}
    if not POT.exists():
        problems.append(f"{rel(POT)} is missing (run scripts/update_i18n.py)")
        pot = None
    else:
        pot = load_catalogue(POT, problems)
    if pot is not None:
        counts["entries"] = len([e for e in pot if not e.obsolete])
        for entry in pot:
            if entry.msgstr or any(entry.msgstr_plural.values()):
                problems.append(f"{rel(POT)}:{entry.linenum}: template has a msgstr")
    po_paths = sorted(I18N.glob("*.po"))
    if not po_paths:
        problems.append(f"{rel(I18N)}: no .po file")
    for path in po_paths:
        po = load_catalogue(path, problems)
        if po is None:
            continue
        name = rel(path)
        live = [entry for entry in po if not entry.obsolete]
        translated = sum(check_entry(name, entry, problems) for entry in live)
        for entry in po.obsolete_entries():
            # Kept for texts that may come back: they must be right then.
            if entry.msgstr:
                label = shorten(entry.msgid)
                where = f"{name}:{entry.linenum} (obsolete)"
                compare(
                    where, label, entry.msgid, entry.msgstr, problems, "translation"
                )
        counts["translated"][path.name] = (translated, len(live))
        if pot is not None:
            pot_keys = {entry_key(e) for e in pot if not e.obsolete}
            po_keys = {entry_key(e) for e in live}
            for _ctx, msgid in sorted(pot_keys - po_keys, key=str):
                problems.append(f"{name}: not merged from the .pot: {shorten(msgid)}")
            for _ctx, msgid in sorted(po_keys - pot_keys, key=str):
                problems.append(f"{name}: no longer in the .pot: {shorten(msgid)}")
    return pot, counts


# ------------------------------------------------------- static extraction


def iter_files(suffix, folders=None):
    bases = [ROOT / folder for folder in folders] if folders else [ROOT]
    for base in bases:
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(
                d for d in dirnames if d not in SKIPPED_DIRS and not d.startswith(".")
            )
            for filename in sorted(filenames):
                if filename.endswith(suffix):
                    yield Path(dirpath) / filename


def python_terms(terms, problems):
    for path in iter_files(".py"):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except SyntaxError as exc:
            problems.append(f"{rel(path)}:{exc.lineno}: does not parse: {exc.msg}")
            continue
        PythonTerms(rel(path), terms, problems).visit(tree)


class PythonTerms(ast.NodeVisitor):
    """Collect the translatable literals of one Python file."""

    def __init__(self, name, terms, problems):
        self.name = name
        self.terms = terms
        self.problems = problems
        self.aliases = set()

    def add(self, node, text, kind):
        if isinstance(text, str) and pushable(text):
            self.terms.setdefault(text, f"{self.name}:{node.lineno} ({kind})")

    def literal(self, node):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return None

    def visit_Assign(self, node):
        # translate = self.env._ : Odoo's exporter only sees calls named _().
        value = node.value
        if (isinstance(value, ast.Attribute) and value.attr == "_") or (
            isinstance(value, ast.Name) and value.id in ("_", "_lt")
        ):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    self.aliases.add(target.id)
        self.generic_visit(node)

    def visit_Call(self, node):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else None
        if name in ("_", "_lt") or (
            isinstance(func, ast.Attribute) and func.attr == "_"
        ):
            self.translation_call(node, name or "_")
        elif name in self.aliases and node.args and self.literal(node.args[0]):
            self.problems.append(
                f"{self.name}:{node.lineno}: {name}({shorten(node.args[0].value)}) "
                "is invisible to Odoo's exporter: call self.env._() (or _()) "
                "with the literal"
            )
        elif (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "fields"
        ):
            self.field_call(node, func.attr)
        elif (
            isinstance(func, ast.Attribute)
            and func.attr == "Constraint"
            and isinstance(func.value, ast.Name)
            and func.value.id == "models"
        ):
            message = node.args[1] if len(node.args) > 1 else keyword(node, "message")
            self.add(node, self.literal(message), "constraint message")
        self.generic_visit(node)

    def translation_call(self, node, name):
        if not node.args:
            return
        first = node.args[0]
        text = self.literal(first)
        if text is not None:
            self.add(node, text, f"{name}()")
        elif isinstance(first, ast.JoinedStr | ast.BinOp):
            kind = (
                "an f-string" if isinstance(first, ast.JoinedStr) else "an expression"
            )
            self.problems.append(
                f"{self.name}:{node.lineno}: {name}() gets {kind}; pass one literal "
                "and the values as arguments"
            )

    def field_call(self, node, field_type):
        position = LABEL_POSITION.get(field_type, 0)
        label = keyword(node, "string")
        if label is None and len(node.args) > position:
            label = node.args[position]
        self.add(node, self.literal(label), "field label")
        self.add(node, self.literal(keyword(node, "help")), "field help")
        selection = keyword(node, "selection")
        if selection is None and field_type == "Selection" and node.args:
            selection = node.args[0]
        for options in (selection, keyword(node, "selection_add")):
            if isinstance(options, ast.List | ast.Tuple):
                for option in options.elts:
                    if isinstance(option, ast.Tuple) and len(option.elts) == 2:
                        self.add(node, self.literal(option.elts[1]), "selection label")

    def visit_ClassDef(self, node):
        body = {
            target.id: statement.value
            for statement in node.body
            if isinstance(statement, ast.Assign)
            for target in statement.targets
            if isinstance(target, ast.Name)
        }
        if "_name" in body and "_description" in body:
            self.add(node, self.literal(body["_description"]), "model description")
        for field_name, value in body.items():
            if not (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Attribute)
                and isinstance(value.func.value, ast.Name)
                and value.func.value.id == "fields"
            ):
                continue
            position = LABEL_POSITION.get(value.func.attr, 0)
            has_label = (
                keyword(value, "string") is not None or len(value.args) > position
            )
            if not has_label and keyword(value, "related") is None:
                # The label Odoo derives from the field's name.
                base = re.sub(r"_ids?$", "", field_name)
                self.add(value, base.replace("_", " ").title(), "derived field label")
        self.generic_visit(node)


def keyword(node, name):
    for item in node.keywords:
        if item.arg == name:
            return item.value
    return None


def xml_terms(terms, problems):
    for path in iter_files(".xml", XML_DIRS):
        try:
            tree = ET.parse(path)
        except ET.ParseError as exc:
            problems.append(f"{rel(path)}: does not parse: {exc}")
            continue
        name = rel(path)

        def add(text, where, name=name):
            if text and pushable(text):
                terms.setdefault(text.strip(), f"{name} ({where})")

        for element in tree.getroot().iter():
            if element.tag == "menuitem":
                add(element.get("name"), f"menu {element.get('id')}")
            elif element.tag in ACTION_TAGS:
                add(element.get("name"), f"{element.tag} {element.get('id')}")
            elif element.tag == "template":
                view_terms(
                    element, lambda text, e=element: add(text, f"view {e.get('id')}")
                )
            elif element.tag == "record":
                record_terms(element, add)


def record_terms(record, add):
    model, xmlid = record.get("model"), record.get("id", "")
    if "." in xmlid and not xmlid.startswith(f"{MODULE}."):
        return  # a record of another module: its terms are that module's
    where = f"{model} {xmlid}"
    for field in record.findall("field"):
        name = field.get("name")
        if field.get("eval") or field.get("ref") or field.get("search"):
            continue
        if model == "ir.ui.view" and name == "arch":
            for root in field:
                view_terms(root, lambda text: add(text, f"view {xmlid}"))
            for attribute in field.iter("attribute"):
                if attribute.get("name") in TRANSLATED_ATTRS and attribute.text:
                    add(attribute.text.strip(), f"view {xmlid}")
            continue
        kind = RECORD_FIELDS.get(model, {}).get(name)
        if kind == "text":
            add(field.text, where)
        elif kind == "html":
            wrapper = ET.Element("div")
            wrapper.text = field.text
            wrapper.extend(list(field))
            label = f"{where} {name}"
            view_terms(wrapper, lambda text, label=label: add(text, label))


def view_terms(root, push):
    """The terms odoo.tools.translate.xml_translate extracts from a view."""

    def nonspace(text):
        return bool(text) and not text.isspace()

    def translatable(node):
        return "o_translate_inline" in node.get("class", "").split() or (
            node.tag in TRANSLATED_ELEMENTS
            and not any(
                k.startswith("t-") or k.endswith(".translate") for k in node.attrib
            )
            and all(translatable(child) for child in node)
        )

    def attribute_to_translate(node):
        return any(
            value and (key in TRANSLATED_ATTRS or key.endswith(".translate"))
            for key, value in node.attrib.items()
        )

    def hastext(node, pos=0):
        return nonspace(node[pos - 1].tail if pos else node.text) or (
            pos < len(node)
            and translatable(node[pos])
            and (
                attribute_to_translate(node[pos])
                or hastext(node[pos])
                or hastext(node, pos + 1)
            )
        )

    def serialize(nodes, text):
        parts = [escape(text or "")]
        for child in nodes:
            parts.append(ET.tostring(child, encoding="unicode").replace(" />", "/>"))
        return "".join(parts).strip()

    def process(node):
        if not isinstance(node.tag, str) or node.tag in SKIPPED_ELEMENTS:
            return
        if node.get("t-translation", "").strip() == "off":
            return
        pos = 0
        while True:
            if hastext(node, pos):
                start = pos
                while pos < len(node) and translatable(node[pos]):
                    pos += 1
                text = node[start - 1].tail if start else node.text
                # The tail of the last grouped child belongs to the group too.
                push(serialize(node[start:pos], text))
            if pos >= len(node):
                break
            process(node[pos])
            pos += 1
        for key, value in node.attrib.items():
            translatable_key = key in TRANSLATED_ATTRS or key.endswith(".translate")
            if "t-call" not in node.attrib and translatable_key and nonspace(value):
                push(value.strip())

    process(root)


def check_pot_is_current(pot, problems):
    terms = {}
    python_terms(terms, problems)
    xml_terms(terms, problems)
    if pot is None:
        return len(terms)
    known = {normalize(entry.msgid) for entry in pot if not entry.obsolete}
    for term, where in sorted(terms.items(), key=lambda item: item[1]):
        if normalize(term) not in known:
            problems.append(
                f"{rel(POT)} is stale: {shorten(term)} from {where} is not a msgid "
                "(run scripts/update_i18n.py)"
            )
    return len(terms)


# ------------------------------------------------------- Odoo's own exporter


def check_against_exporter(db, config, addons_path, problems):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from update_i18n import export_pot, without_dates

    with tempfile.TemporaryDirectory(prefix="check_i18n_") as tmp:
        fresh = Path(tmp) / f"{MODULE}.pot"
        try:
            export_pot(db, fresh, config=config, addons_path=addons_path)
        except RuntimeError as exc:
            problems.append(f"Odoo's exporter failed: {exc}")
            return
        new = without_dates(fresh.read_text(encoding="utf-8"))
    old = without_dates(POT.read_text(encoding="utf-8")) if POT.exists() else ""
    if new != old:
        import difflib

        diff = list(
            difflib.unified_diff(
                old.splitlines(), new.splitlines(), "committed", "exported", lineterm=""
            )
        )
        problems.append(
            f"{rel(POT)} differs from Odoo's export of database {db} "
            "(run scripts/update_i18n.py):\n    " + "\n    ".join(diff[:60])
        )


# ------------------------------------------------------------------ helpers


def rel(path):
    try:
        return str(Path(path).relative_to(ROOT))
    except ValueError:
        return str(path)


def shorten(text, width=70):
    text = normalize(text)
    return repr(text if len(text) <= width else text[: width - 1] + "…")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--odoo-db", metavar="DB", help="also compare the .pot with Odoo's export of DB"
    )
    parser.add_argument(
        "--odoo-config", metavar="FILE", help="Odoo configuration file (addons path)"
    )
    parser.add_argument(
        "--addons-path", help="Odoo addons path, when no configuration file gives it"
    )
    args = parser.parse_args(argv)

    problems = []
    pot, counts = check_catalogues(problems)
    static = check_pot_is_current(pot, problems)
    if args.odoo_db:
        check_against_exporter(
            args.odoo_db, args.odoo_config, args.addons_path, problems
        )

    for problem in problems:
        print(f"- {problem}")
    translated = ", ".join(
        f"{name} {done}/{total} translated"
        for name, (done, total) in sorted(counts["translated"].items())
    )
    exporter = (
        f"; compared with Odoo's export of {args.odoo_db}" if args.odoo_db else ""
    )
    print(
        f"i18n: {counts['entries']} entries in {rel(POT)}; {translated or 'no .po'}; "
        f"{static} texts found in the code and data{exporter}; "
        f"{len(problems)} problem(s)"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
