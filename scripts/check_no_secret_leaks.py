#!/usr/bin/env python3
"""Prove that no password of an e-mail account reaches a dump or a debug log.

Creates a fresh database with the addon and two accounts whose passwords are
new at each run (one with non-ASCII characters, one account with a separate
login and password), pointing at SMTP servers on loopback that require AUTH
PLAIN and AUTH LOGIN. With every Odoo logger at DEBUG (SQL queries included)
it runs the "Check account settings" button and a real send through Odoo's
mail queue, rotates the encryption key with the addon's
``email_account_rekey`` command and checks the accounts again with the new
key alone. Then it dumps the database with pg_dump and searches the dump,
the log, the console output and the filestore for every form of each
password: clear text in UTF-8 and Latin-1, hexadecimal, escaped, percent
encoded, base64 at every alignment (which covers AUTH LOGIN), and the AUTH
PLAIN tokens. It exits with 1 and says what leaked where if anything does,
and drops its database (unless --keep).

A canary that the run writes on purpose into the log and into the database
must be found, or the search itself is broken and the check fails.

Usage (needs ``import odoo``, PostgreSQL and pg_dump):

    scripts/check_no_secret_leaks.py [--addons-path PATHS] [--keep]

``--addons-path`` must contain a folder called ``email_account`` holding this
addon; by default Odoo's addons folders plus a link to this checkout.
"""

import argparse
import base64
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
# The engine's test certificate authority, as the addon's tests use it.
sys.path.insert(0, str(ROOT))
import local_odoo

from smtp_engine.tests.servers import (
    make_test_certificates,
    server_tls_context,
)

ODOO_TIMEOUT = 900
SMTP_TIMEOUT = 10

# Runs inside `odoo shell` (which provides `env`). Phase "send": create the
# accounts, check them and send one message from each through the mail
# queue. Phase "recheck": check them again, after the key rotation.
SCENARIO = r"""
import json, logging, os
params = json.loads(open(os.environ["LEAK_CHECK_PARAMS"], encoding="utf-8").read())
canary_logger = logging.getLogger("odoo.addons.email_account.leak_check")
Account = env["email.account"].with_context(active_test=False)
results = {}
if params["phase"] == "send":
    canary_logger.debug("canary written on purpose: %s", params["canary"])
    env["ir.config_parameter"].set_param("email_account.leak_check", params["canary"])
    accounts = Account.create(params["accounts"])
    env.cr.commit()
    for account in accounts:  # one at a time: each answers in the request
        account.action_send_test_message()
    env.cr.commit()
    mails = env["mail.mail"].create([
        {
            "email_from": account.sender_email,
            "email_to": params["recipient"],
            "subject": "Leak check through the mail queue",
            "body_html": "<p>Sent by check_no_secret_leaks.</p>",
        }
        for account in accounts
    ])
    env.cr.commit()
    mails.send(raise_exception=False)
    env.cr.commit()
    results["mail_states"] = mails.mapped("state")
    results["mail_failures"] = [m.failure_reason or "" for m in mails]
else:
    accounts = Account.search([("name", "like", "Leak check")], order="id")
    for account in accounts:  # one at a time: each answers in the request
        account.action_send_test_message()
    env.cr.commit()
results["test_states"] = accounts.mapped("test_state")
results["test_messages"] = accounts.mapped("test_message")
with open(os.environ["LEAK_CHECK_RESULTS"], "w", encoding="utf-8") as out:
    json.dump(results, out)
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AuthSmtpServer:
    """aiosmtpd on 127.0.0.1 that accepts one login with one mechanism only.

    ``sessions`` lists ``(mechanism, login)`` of each successful AUTH and
    ``messages`` the logins under which messages were accepted.
    """

    def __init__(self, mechanism, login, password, tls_context):
        self.tls_context = tls_context
        self.mechanism = mechanism
        self.login = login
        self.password = password
        self.sessions = []
        self.messages = []
        self.port = free_port()
        self._controller = None

    def _authenticate(self, _server, _session, _envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.login
            and auth_data.password.decode() == self.password
        ):
            self.sessions.append((mechanism, self.login))
            return AuthResult(success=True, auth_data=self.login)
        return AuthResult(success=False, handled=False)

    async def handle_MAIL(self, _server, session, envelope, address, _options):
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, _server, session, _envelope):
        self.messages.append(session.auth_data)
        return "250 2.0.0 Ok: queued as LEAKCHECK"

    def __enter__(self):
        from aiosmtpd.controller import Controller

        other = {"PLAIN": "LOGIN", "LOGIN": "PLAIN"}[self.mechanism]
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._authenticate,
            # Accounts log in only over TLS: STARTTLS, with a certificate of
            # the test authority that Odoo is told to trust.
            tls_context=self.tls_context,
            require_starttls=True,
            auth_required=False,
            auth_exclude_mechanism=[other],
            ready_timeout=SMTP_TIMEOUT,
        )
        self._controller.start()
        return self

    def __exit__(self, *_exc_info):
        self._controller.stop()


def base64_cores(raw):
    """The base64 text that encodes ``raw`` wherever it sits in a stream.

    Three alignments: what follows depends on the offset of ``raw`` modulo
    3 in the encoded data. Only whole groups that encode ``raw`` alone.
    """
    cores = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw)
        start = 4 if offset else 0
        end = (offset + len(raw)) // 3 * 4
        if end - start >= 8:
            cores.append(encoded[start:end])
    return cores


def password_forms(login, password):
    """Return ``{bytes: description}`` of each form ``password`` may take."""
    forms = {}

    def add(needle, description):
        # The first description wins: ASCII is the same in UTF-8 and Latin-1.
        forms.setdefault(needle, description)

    for encoding in ("utf-8", "latin-1"):
        try:
            raw = password.encode(encoding)
            raw_login = login.encode(encoding)
        except UnicodeEncodeError:
            continue
        add(raw, f"clear text ({encoding})")
        add(raw.hex().encode(), f"hexadecimal ({encoding})")
        add(raw.hex().upper().encode(), f"hexadecimal ({encoding})")
        for authzid in (b"", raw_login):
            plain = authzid + b"\0" + raw_login + b"\0" + raw
            add(base64.b64encode(plain), f"AUTH PLAIN token ({encoding})")
        for core in base64_cores(raw):
            add(core, f"base64 ({encoding}), as in AUTH LOGIN or inside a stream")
            urlsafe = core.replace(b"+", b"-").replace(b"/", b"_")
            add(urlsafe, f"url-safe base64 ({encoding})")
    add(json.dumps(password)[1:-1].encode(), "JSON escaped")
    add(ascii(password)[1:-1].encode(), "Python escaped")
    add(password.encode("unicode_escape"), "Python escaped")
    add(urllib.parse.quote(password).encode(), "percent encoded")
    add(urllib.parse.quote_plus(password).encode(), "percent encoded")
    return forms


def find_forms(forms, data):
    """Return ``[(description, line number)]`` of the forms found in ``data``."""
    found = []
    for needle, description in forms.items():
        position = data.find(needle)
        if position >= 0:
            found.append((description, data.count(b"\n", 0, position) + 1))
    return found


class LeakCheck:
    """One run: a database, its accounts and servers, then the search."""

    def __init__(self, work, addons_path):
        self.work = work
        self.addons_path = addons_path
        self.dbname = f"email_account_leaks_{os.getpid()}_{int(time.time())}"
        self.data_dir = work / "data"
        self.log_file = work / "odoo.log"
        self.console_file = work / "console.txt"
        self.config_file = work / "odoo.conf"
        self.certs = make_test_certificates(work / "certs")
        self.tls_context = server_tls_context(*self.certs.pair("server"))
        self.config_file.write_text(
            "[options]\n"
            f"addons_path = {addons_path}\n"
            f"data_dir = {self.data_dir}\n"
            "http_interface = 127.0.0.1\n"
            f"http_port = {free_port()}\n"
            f"email_account_ca_file = {self.certs.ca_cert}\n"
        )
        self.environ = {
            key: value
            for key, value in os.environ.items()
            if key not in ("EMAIL_ACCOUNT_KEY", "ODOO_RC")
        }
        self.environ.update(
            LEAK_CHECK_PARAMS=str(work / "params.json"),
            LEAK_CHECK_RESULTS=str(work / "results.json"),
        )
        self.debug = [
            "--log-level=debug",
            "--log-handler=:DEBUG",
            "--log-handler=odoo.sql_db:DEBUG",
            f"--logfile={self.log_file}",
        ]
        suffix = secrets.token_hex(4)
        self.canary = f"Canary-Kanarienvogel-ü-{suffix}"
        self.plain = ("plain.user@example.com", f"Grüße-Pässwort-{suffix}")
        self.login = (f"relay-lögin-{suffix}", f"Ωμέγα-κωδικός-{suffix}")
        self.unused = ("mailbox@example.com", f"main-Secret-{suffix}!")
        self.secrets = [
            ("the password of the AUTH PLAIN account", *self.plain),
            ("the separate password (AUTH LOGIN)", *self.login),
            ("the unused main password", *self.unused),
        ]
        self.failures = []

    def odoo(self, *command, stdin=None):
        with self.console_file.open("ab") as console:
            completed = subprocess.run(
                [sys.executable, "-m", "odoo", *command],
                cwd=self.work,
                env=self.environ,
                input=stdin,
                stdout=console,
                stderr=subprocess.STDOUT,
                timeout=ODOO_TIMEOUT,
                check=False,
            )
        if completed.returncode:
            raise RuntimeError(
                f"odoo {' '.join(command[:2])} failed (exit {completed.returncode}); "
                f"see {self.console_file} and {self.log_file}"
            )

    def account_values(self, plain_port, login_port):
        common = {
            "smtp_host": "127.0.0.1",
            "smtp_encryption": "starttls",
            "smtp_auth_required": True,
            "smtp_timeout": SMTP_TIMEOUT,
            # The mail of this check is queued by the superuser: system mail.
            "allow_system_mail": True,
        }
        return [
            dict(
                common,
                name="Leak check PLAIN",
                username=self.plain[0],
                password=self.plain[1],
                sender_email=self.plain[0],
                smtp_port=plain_port,
            ),
            dict(
                common,
                name="Leak check LOGIN",
                username=self.unused[0],
                password=self.unused[1],
                smtp_login=self.login[0],
                smtp_password=self.login[1],
                sender_email=self.unused[0],
                smtp_port=login_port,
            ),
        ]

    def scenario(self, phase, accounts=()):
        params = {
            "phase": phase,
            "canary": self.canary,
            "recipient": "recipient@example.com",
            "accounts": accounts,
        }
        Path(self.environ["LEAK_CHECK_PARAMS"]).write_text(
            json.dumps(params), encoding="utf-8"
        )
        shell = ["shell", "-c", str(self.config_file), "-d", self.dbname]
        self.odoo(*shell, *self.debug, stdin=SCENARIO.encode())
        results = json.loads(Path(self.environ["LEAK_CHECK_RESULTS"]).read_text())
        if results["test_states"] != ["ok", "ok"]:
            self.failures.append(f"{phase}: the checks failed: {results}")
        if phase == "send" and results["mail_states"] != ["sent", "sent"]:
            self.failures.append(f"{phase}: the mail was not sent: {results}")

    def rotate_key(self):
        """Put a new key first, re-encrypt, then keep the new key alone."""
        key_file = self.data_dir / "email_account.key"
        old_key = key_file.read_text().strip()
        new_key = Fernet.generate_key().decode()
        key_file.write_text(f"{new_key}\n{old_key}\n")
        self.odoo(
            f"--addons-path={self.addons_path}",
            "email_account_rekey",
            *("-c", str(self.config_file), "-d", self.dbname, *self.debug),
        )
        key_file.write_text(f"{new_key}\n")
        if b"3 secret(s) re-encrypted" not in self.console_file.read_bytes():
            self.failures.append("email_account_rekey did not report 3 secrets")

    def run_odoo(self):
        with (
            AuthSmtpServer("PLAIN", *self.plain, self.tls_context) as plain_server,
            AuthSmtpServer("LOGIN", *self.login, self.tls_context) as login_server,
        ):
            print(f"Installing email_account into {self.dbname} ...", flush=True)
            self.odoo(
                *("-c", str(self.config_file), "-d", self.dbname),
                *("-i", "email_account", "--stop-after-init", "--log-level=warn"),
            )
            print("Checking and sending with DEBUG logs ...", flush=True)
            self.scenario(
                "send", self.account_values(plain_server.port, login_server.port)
            )
            print("Rotating the key with email_account_rekey ...", flush=True)
            self.rotate_key()
            self.scenario("recheck")
        for server, login in (
            (plain_server, self.plain[0]),
            (login_server, self.login[0]),
        ):
            expected = [(server.mechanism, login)] * 3
            if server.sessions != expected or len(server.messages) != 3:
                self.failures.append(
                    f"the AUTH {server.mechanism} server saw the logins "
                    f"{server.sessions} and {len(server.messages)} messages, "
                    f"expected {expected} and 3 messages"
                )

    def places(self):
        """``{description: bytes}`` of everything the run left behind."""
        dump_file = self.work / "dump.sql"
        subprocess.run(
            ["pg_dump", "--no-owner", "--file", str(dump_file), self.dbname],
            check=True,
            timeout=ODOO_TIMEOUT,
        )
        places = {
            "the pg_dump of the database": dump_file.read_bytes(),
            "the DEBUG log": self.log_file.read_bytes(),
            "the console output": self.console_file.read_bytes(),
        }
        filestore = self.data_dir / "filestore" / self.dbname
        for path in sorted(filestore.rglob("*")):
            if path.is_file():
                places[f"the filestore file {path.name}"] = path.read_bytes()
        return places

    def search(self, places):
        """Return the leaks found, after proving that the search works."""
        canary_forms = password_forms("canary", self.canary)
        for place in ("the pg_dump of the database", "the DEBUG log"):
            if not find_forms(canary_forms, places[place]):
                self.failures.append(f"the canary is not in {place}: search broken")
        if b" DEBUG " not in places["the DEBUG log"]:
            self.failures.append("the log has no DEBUG record")
        leaks = []
        for label, login, password in self.secrets:
            forms = password_forms(login, password)
            for place, data in places.items():
                leaks += [
                    f"{label}: {description} in {place}, line {line}"
                    for description, line in find_forms(forms, data)
                ]
        return leaks


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--addons-path", help="Odoo's addons path, with this addon")
    parser.add_argument(
        "--keep", action="store_true", help="keep the database and the files"
    )
    args = parser.parse_args()
    # aiosmtpd warns about its own deprecated attribute at every login.
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    work = Path(tempfile.mkdtemp(prefix="email_account_leaks."))
    check = LeakCheck(work, args.addons_path or local_odoo.addons_path(work))
    try:
        check.run_odoo()
        places = check.places()
    finally:
        if not args.keep:
            subprocess.run(["dropdb", "--if-exists", check.dbname], check=False)
    leaks = check.search(places)
    for failure in check.failures:
        print(f"FAILED: {failure}")
    for leak in leaks:
        print(f"LEAK: {leak}")
    if check.failures or leaks:
        print(f"The files are kept in {work}")
        return 1
    forms = sum(len(password_forms(login, pw)) for _l, login, pw in check.secrets)
    print(
        f"No leak: {len(check.secrets)} passwords in {forms} forms, searched in "
        f"{len(places)} places (dump {len(places['the pg_dump of the database'])} "
        f"bytes, DEBUG log {len(places['the DEBUG log'])} bytes)."
    )
    if args.keep:
        print(f"Kept: the database {check.dbname} and the files in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
