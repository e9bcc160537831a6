#!/usr/bin/env python3
"""Take the screenshots of static/description, in English and Greek.

    python3 scripts/screenshots.py [--db NAME] [--port PORT] [--keep]

Everything runs on 127.0.0.1 and is made for the run, then removed:

- TLS certificates from the test suite's factory, and the test suite's
  loopback servers: an SMTP server with STARTTLS and logins, one that
  serves a self-signed certificate, Dovecot (IMAP) fed by an SMTP server
  that files what it accepts in the inbox or in Junk, and a DNS server with
  the SPF and DMARC records of the sender domains;
- a database with the addon (and ``crm`` when it is in the addons path),
  the Greek language and the addon's Greek catalogue;
- Odoo, trusting the test certificate authority
  (``email_account_ca_file``) and asking the loopback DNS server
  (``email_account_dns_server``);
- the accounts of the screens, checked for real in each language: a
  shared account with the delivery check (inbox, trusted), one whose mail
  goes to spam, one with a wrong password, one behind a self-signed
  certificate, a Microsoft 365 account, and the personal account of a
  salesperson. Only the "connected" state of the Microsoft 365 account is
  written into the database (no sign-in with Microsoft is possible here).

Each screen is captured with Debian's headless chromium, driven over the
DevTools protocol, as ``static/description/screenshot_<screen>_<en|el>.png``.
The database is dropped at the end, unless ``--keep``: the next run with
``--keep`` reuses it, updated with ``-u email_account``. An existing
database that no run kept is never touched.

Needs chromium (``apt-get install chromium``), Dovecot
(``apt-get install dovecot-imapd``), websocket-client (``pip install
websocket-client``) and the engine's test dependencies (aiosmtpd,
cryptography, dnslib), with a Python that imports Odoo 19.
"""

import argparse
import base64
import contextlib
import datetime
import http.cookiejar
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import websocket

ROOT = Path(__file__).resolve().parent.parent
# The loopback servers and certificates of the engine's tests.
sys.path.insert(0, str(ROOT))

from ci_tools import has_module
from local_odoo import (
    addons_path,
    odoo_command,
    stop_process_group,
    wait_until_serving,
    write_config,
)

from smtp_engine.tests.dns_server import LoopbackDnsServer
from smtp_engine.tests.dovecot import (
    DeliveringSmtpServer,
    DovecotServer,
    dovecot_missing,
)
from smtp_engine.tests.servers import (
    LoopbackSmtpServer,
    free_port,
    make_test_certificates,
)

LANGS = {"en": "en_US", "el": "el_GR"}
TIMEZONE = "Europe/Athens"
# The list's columns need more room than the form.
LIST_WIDTH = 1920
ACTION = "action-email_account.email_account_action"
ADMIN = ("admin", "admin")
SALESPERSON = {
    "name": "Eleni Georgiou",
    "login": "eleni",
    "password": "eleni-screens",
    "email": "eleni.georgiou@acme.example",
}
# Logins of the loopback servers; the support account's password is wrong.
PASSWORDS = {
    "sales@acme.example": "sales-screens",
    "news@acme-news.example": "news-screens",
    "support@acme.example": "support-screens",
    "warehouse@acme.example": "warehouse-screens",
    SALESPERSON["email"]: "eleni-mailbox",
}
ZONE = """
acme.example.             300 IN TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc.acme.example.      300 IN TXT "v=DMARC1; p=reject"
acme-news.example.        300 IN TXT "v=spf1 ip4:192.0.2.1 ~all"
_dmarc.acme-news.example. 300 IN TXT "v=DMARC1; p=none"
"""
# What the receiving provider of each delivery check says.
TRUSTED = (
    "mx.acme.example; spf=pass smtp.mailfrom=sales@acme.example; "
    "dkim=pass header.d=acme.example; dmarc=pass header.from=acme.example"
)
AT_RISK = (
    "mx.acme.example; spf=softfail (127.0.0.1 is not allowed) "
    "smtp.mailfrom=news@acme-news.example; dkim=none (no signature); "
    'dmarc=fail reason="SPF and DKIM failed" header.from=acme-news.example'
)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
]
# The web client is ready when these are on screen and nothing is loading.
READY = {
    "list": ".o_list_view .o_data_row",
    "form": ".o_form_view .o_form_sheet .o_field_widget",
}
# The titled group of the form that holds a field: "Last Test" holds
# test_state, "Delivery and Trust" roundtrip_state, "Server" smtp_host.
GROUP_JS = """
(name) => {
    let element = document.querySelector(`.o_form_sheet [name="${name}"]`);
    const title =
        ":scope > .o_horizontal_separator, :scope > * > .o_horizontal_separator";
    for (; element && !element.matches(".o_form_sheet");
         element = element.parentElement) {
        if (element.matches(".o_group, .o_inner_group")
                && element.querySelector(title)) {
            return element;
        }
    }
    return null;
}
"""


def say(text):
    print(f"==> {text}", flush=True)


class Odoo:
    """JSON-RPC with the session cookie of one user."""

    def __init__(self, url, db, login, password):
        self.url = url.rstrip("/")
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies)
        )
        self.ids = itertools.count(1)
        info = self.call(
            "/web/session/authenticate",
            {"db": db, "login": login, "password": password},
        )
        self.uid = info["uid"]
        if not self.uid:
            sys.exit(f"cannot log in as {login} on {db}")

    def call(self, path, params):
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(
                {
                    "jsonrpc": "2.0",
                    "method": "call",
                    "id": next(self.ids),
                    "params": params,
                }
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        with self.opener.open(request, timeout=300) as response:
            answer = json.load(response)
        if answer.get("error"):
            error = answer["error"].get("data", {}).get("message") or answer["error"]
            raise RuntimeError(f"{path}: {error}")
        return answer["result"]

    def execute(self, model, method, *args, **kwargs):
        return self.call(
            "/web/dataset/call_kw",
            {"model": model, "method": method, "args": list(args), "kwargs": kwargs},
        )

    def ref(self, xmlid):
        module, name = xmlid.split(".")
        found = self.execute(
            "ir.model.data",
            "search_read",
            [("module", "=", module), ("name", "=", name)],
            ["res_id"],
        )
        return found[0]["res_id"] if found else None

    @property
    def session_id(self):
        return next(c.value for c in self.cookies if c.name == "session_id")


class Chromium:
    """A headless chromium with a fresh profile, driven over DevTools."""

    def __init__(self, binary, width, height):
        self.width = width
        self.height = height
        self.profile = tempfile.mkdtemp(prefix="screenshots_chromium_")
        self.process = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port = self._devtools_port()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as response:
            page = next(t for t in json.load(response) if t["type"] == "page")
        self.ws = websocket.create_connection(
            page["webSocketDebuggerUrl"], suppress_origin=True, timeout=60
        )
        self.ids = itertools.count(1)
        self.send("Page.enable")
        self.send("Network.enable")
        # Dates as the users of the screens see them (the web client shows
        # them in the browser's time zone).
        self.send("Emulation.setTimezoneOverride", timezoneId=TIMEZONE)
        self.resize(height)

    def _devtools_port(self):
        marker = Path(self.profile, "DevToolsActivePort")
        for _attempt in range(200):
            if marker.exists() and marker.read_text().strip():
                return int(marker.read_text().split()[0])
            if self.process.poll() is not None:
                sys.exit("chromium exited at start")
            time.sleep(0.1)
        sys.exit("chromium did not open its DevTools port")

    def send(self, method, **params):
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def resize(self, height, width=None):
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width or self.width,
            height=int(height),
            deviceScaleFactor=1,
            mobile=False,
        )

    def evaluate(self, expression):
        result = self.send(
            "Runtime.evaluate",
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def log_in(self, session):
        self.send("Network.clearBrowserCookies")
        self.send(
            "Network.setCookie",
            name="session_id",
            value=session.session_id,
            url=session.url,
            httpOnly=True,
        )

    def wait_for(self, selector, settle=1.5, timeout=60):
        self.wait_until(
            f"!!document.querySelector({json.dumps(selector)})"
            " && !document.querySelector('.o_loading_indicator, .o_blockUI')",
            settle,
            timeout,
        )

    def wait_until(self, expression, settle=1.5, timeout=60):
        """Wait until the JavaScript ``expression`` is true."""
        deadline = time.monotonic() + timeout
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{expression} did not come true")
            time.sleep(0.25)
        # Let fonts, badges and the chatter finish rendering.
        time.sleep(settle)

    def open(self, url, selector, width=None):
        self.resize(self.height, width)
        self.send("Page.navigate", url=url)
        self.wait_for(selector)

    def click(self, selector):
        if not self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " if (el) el.click(); return !!el; })()"
        ):
            raise RuntimeError(f"nothing to click at {selector}")

    def rect(self, expression, margin=0):
        """The page rectangle of the element ``expression`` evaluates to."""
        return self.evaluate(
            f"(() => {{ const el = {expression}; if (!el) return null;"
            f" const r = el.getBoundingClientRect(), m = {margin};"
            " return {x: r.left + scrollX - m, y: r.top + scrollY - m,"
            " width: r.width + 2 * m, height: r.height + 2 * m}; })()"
        )

    def fit(self, expression, margin=16):
        """Make the window tall enough to show the element whole."""
        for _attempt in range(3):
            box = self.rect(expression)
            bottom = box["y"] + box["height"] + margin
            if bottom <= self.evaluate("window.innerHeight"):
                return
            self.resize(bottom, self.evaluate("window.innerWidth"))
            time.sleep(0.5)

    def screenshot(self, path, clip=None):
        params = {"format": "png"}
        if clip:
            params["clip"] = {**clip, "scale": 1}
        data = self.send("Page.captureScreenshot", **params)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        print(path, flush=True)

    def close(self):
        try:
            self.ws.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            shutil.rmtree(self.profile, ignore_errors=True)


class Servers(contextlib.ExitStack):
    """The loopback servers the accounts point at."""

    def __init__(self, folder):
        super().__init__()
        self.folder = folder

    def __enter__(self):
        super().__enter__()
        if missing := dovecot_missing():
            sys.exit(missing)
        self.certs = make_test_certificates(self.folder / "certificates")
        self.dns = self.enter_context(LoopbackDnsServer(ZONE))
        delivered = ["sales@acme.example", "news@acme-news.example"]
        self.dovecot = self.enter_context(
            DovecotServer(self.certs, {user: PASSWORDS[user] for user in delivered})
        )
        self.delivering = self.enter_context(
            DeliveringSmtpServer(
                self.dovecot,
                delivered[0],
                tls="starttls",
                certs=self.certs,
                auth={user: PASSWORDS[user] for user in delivered},
            )
        )
        self.smtp = self.enter_context(
            LoopbackSmtpServer(
                tls="starttls",
                certs=self.certs,
                auth={
                    user: PASSWORDS[user]
                    for user in ("support@acme.example", SALESPERSON["email"])
                },
            )
        )
        self.self_signed = self.enter_context(
            LoopbackSmtpServer(tls="ssl", certs=self.certs, cert="self_signed")
        )
        return self

    def deliver_to(self, user, folder, authentication_results, delay):
        self.delivering.user = user
        self.delivering.folder = folder
        self.delivering.authentication_results = authentication_results
        self.delivering.delay = delay


class OdooServer:
    """Odoo on 127.0.0.1 with a database made for the screenshots."""

    def __init__(self, folder, db, port, servers):
        self.folder = folder
        self.db = db
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.config = folder / "odoo.conf"
        self.log = folder / "odoo.log"
        self.process = None
        self.made = False
        self.addons_path = addons_path(folder)
        write_config(
            self.config,
            addons=self.addons_path,
            data_dir=folder / "data",
            db=db,
            port=port,
            # Checks with the delivery check run in the background.
            max_cron_threads=1,
            logfile=self.log,
            email_account_ca_file=servers.certs.ca_cert,
            email_account_dns_server=servers.dns.address,
        )

    def database_exists(self):
        import psycopg2

        connection = psycopg2.connect(dbname="postgres")
        try:
            with connection.cursor() as cr:
                cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.db])
                return bool(cr.fetchone())
        finally:
            connection.close()

    def start(self, reuse):
        """Create the database, or update the one an earlier run kept."""
        update = ["-u", "email_account"]
        if self.database_exists():
            if not reuse:
                sys.exit(
                    f"the database {self.db} exists and no earlier run of this "
                    f"script kept it: choose another name with --db"
                )
            self.made = True
        else:
            crm = has_module("crm", self.addons_path)
            modules = "email_account,crm" if crm else "email_account"
            self.made = True
            say(f"creating the database {self.db} with {modules} (log: {self.log})")
            subprocess.run(
                odoo_command(self.config, "-i", modules, "--stop-after-init"),
                check=True,
                cwd=self.folder,
                stdout=subprocess.DEVNULL,
            )
            update = []
        say(f"starting Odoo on {self.url}")
        self.process = subprocess.Popen(
            odoo_command(self.config, *update),
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        if problem := wait_until_serving(self.process, self.url):
            sys.exit(f"{problem}: {self.log}")

    def sql(self, query, params):
        import psycopg2

        connection = psycopg2.connect(dbname=self.db)
        try:
            with connection, connection.cursor() as cr:
                cr.execute(query, params)
        finally:
            connection.close()

    def stop(self):
        if self.process is None:
            return
        stop_process_group(self.process, 20)
        self.process = None

    def drop(self):
        """Drop the database, if this run made it or reused a kept one."""
        if not self.made:
            return
        say(f"dropping the database {self.db}")
        subprocess.run(["dropdb", "--if-exists", self.db], check=True)


class Screens:
    """The accounts of the screens, their checks, and the captures."""

    def __init__(self, odoo_server, servers, browser, out):
        self.server = odoo_server
        self.servers = servers
        self.browser = browser
        self.out = out
        self.accounts = {}

    # -- data ------------------------------------------------------------

    def admin(self):
        return Odoo(self.server.url, self.server.db, *ADMIN)

    def salesperson(self):
        return Odoo(
            self.server.url,
            self.server.db,
            SALESPERSON["login"],
            SALESPERSON["password"],
        )

    def set_up(self):
        admin = self.admin()
        # Each screen shows the check its step asked for, not the daily one.
        admin.execute(
            "ir.cron",
            "write",
            [admin.ref("email_account.email_account_cron_health_watch")],
            {"active": False},
        )
        admin.execute(
            "base.language.install",
            "lang_install",
            [
                admin.execute(
                    "base.language.install",
                    "create",
                    {
                        "lang_ids": [(6, 0, [self.lang_id(admin, "el_GR")])],
                        "overwrite": True,
                    },
                )
            ],
        )
        old = admin.execute(
            "email.account", "search", [], context={"active_test": False}
        )
        admin.execute("email.account", "unlink", old)
        self.set_up_salesperson(admin)
        delivering, smtp = self.servers.delivering, self.servers.smtp
        common = {
            "smtp_host": "127.0.0.1",
            "smtp_encryption": "starttls",
            "smtp_auth_required": True,
            "smtp_timeout": 10,
        }
        # Through the server that files in Dovecot, with the delivery check.
        delivered = {
            **common,
            "smtp_port": delivering.port,
            "delivery_check": True,
            "imap_host": "127.0.0.1",
            "imap_port": self.servers.dovecot.port,
            "imap_encryption": "ssl",
            "roundtrip_wait": 20,
        }
        self.accounts = {
            "sales": self.create(
                admin,
                "Sales Department",
                "Acme Sales",
                "sales@acme.example",
                **delivered,
                allowed_senders="internal_users",
            ),
            "news": self.create(
                admin, "Newsletter", "Acme News", "news@acme-news.example", **delivered
            ),
            "support": self.create(
                admin,
                "Customer Support",
                "Acme Support",
                "support@acme.example",
                **common,
                password="not-the-password",
                smtp_port=smtp.port,
            ),
            "warehouse": self.create(
                admin,
                "Warehouse (own server)",
                "Acme Warehouse",
                "warehouse@acme.example",
                **{**common, "smtp_encryption": "ssl"},
                smtp_port=self.servers.self_signed.port,
            ),
            "microsoft": self.create(
                admin,
                "Management (Microsoft 365)",
                "Acme Management",
                "management@acme.example",
                smtp_host="smtp.office365.com",
                smtp_port=587,
                smtp_encryption="starttls",
                smtp_authentication="outlook",
                smtp_auth_required=True,
                smtp_timeout=30,
            ),
        }
        # The salesperson sets up their own account, as from their preferences.
        self.accounts["personal"] = self.create(
            self.salesperson(),
            SALESPERSON["name"],
            SALESPERSON["name"],
            SALESPERSON["email"],
            **common,
            smtp_port=smtp.port,
        )

    @staticmethod
    def lang_id(odoo, code):
        return odoo.execute(
            "res.lang",
            "search",
            [("code", "=", code)],
            context={"active_test": False},
        )[0]

    @staticmethod
    def create(odoo, name, sender_name, address, **values):
        """An account that sends from ``address`` and logs in with it.

        Its password is the loopback servers' one, unless ``values`` has one.
        """
        if address in PASSWORDS:
            values.setdefault("password", PASSWORDS[address])
        return odoo.execute(
            "email.account",
            "create",
            {
                "name": name,
                "sender_name": sender_name,
                "sender_email": address,
                "username": address,
                **values,
            },
        )

    def set_up_salesperson(self, admin):
        groups = [admin.ref("base.group_user")]
        if salesman := admin.ref("sales_team.group_sale_salesman"):
            groups.append(salesman)
        found = admin.execute(
            "res.users",
            "search",
            [("login", "=", SALESPERSON["login"])],
            context={"active_test": False},
        )
        values = {**SALESPERSON, "group_ids": [(6, 0, groups)], "tz": TIMEZONE}
        if found:
            admin.execute("res.users", "write", found, values)
        else:
            admin.execute("res.users", "create", values)
        admin.execute("res.users", "write", [admin.uid], {"tz": TIMEZONE})

    def check(self, odoo, name, lang):
        odoo.execute(
            "email.account",
            "action_send_test_message",
            [self.accounts[name]],
            context={"lang": lang},
        )
        self.wait_checked(name)

    def wait_checked(self, name, timeout=90):
        """Wait for the end of a check that runs in the background."""
        deadline = time.monotonic() + timeout
        while (
            self.admin().execute(
                "email.account", "read", [self.accounts[name]], ["check_state"]
            )[0]["check_state"]
            != "idle"
        ):
            if time.monotonic() > deadline:
                sys.exit(f"the check of {name} did not end")
            time.sleep(0.5)

    def check_all(self, lang):
        """Check each account in ``lang``: its stored result is in it too."""
        admin = self.admin()
        # Seconds before the message arrives, as with a real provider.
        for name, folder, results, delay in (
            ("sales", "INBOX", TRUSTED, 1.4),
            ("news", "Junk", AT_RISK, 2.7),
        ):
            email = admin.execute(
                "email.account", "read", [self.accounts[name]], ["sender_email"]
            )[0]["sender_email"]
            self.servers.deliver_to(email, folder, results, delay)
            self.check(admin, name, lang)
        self.check(admin, "support", lang)
        self.check(admin, "warehouse", lang)
        self.check(self.salesperson(), "personal", lang)

    def set_language(self, lang):
        admin = self.admin()
        for login in (ADMIN[0], SALESPERSON["login"]):
            user = admin.execute("res.users", "search", [("login", "=", login)])
            admin.execute("res.users", "write", user, {"lang": lang})
            if admin.execute("res.users", "read", user, ["lang"])[0]["lang"] != lang:
                sys.exit(f"{lang} is not active in {self.server.db}")

    def connect_microsoft(self, connected):
        """Show the account as signed in, or not: staged in the database.

        The refresh token is a placeholder, never used: nothing checks or
        sends through this account.
        """
        self.server.sql(
            "UPDATE email_account SET oauth_mailbox = %s, oauth_expiration = %s, "
            "oauth_refresh_secret = %s WHERE id = %s",
            (
                "management@acme.example" if connected else None,
                # An access token lasts an hour.
                datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
                + datetime.timedelta(minutes=52)
                if connected
                else None,
                "placeholder" if connected else None,
                self.accounts["microsoft"],
            ),
        )

    # -- captures ----------------------------------------------------------

    def path(self, screen, short):
        return self.out / f"screenshot_{screen}_{short}.png"

    def form(self, session, account):
        self.browser.log_in(session)
        self.browser.open(
            f"{self.server.url}/odoo/{ACTION}/{self.accounts[account]}",
            READY["form"],
        )

    def capture_top(self, path, end, margin):
        """The page's width, from its top to the end of the element ``end``."""
        self.browser.fit(end, margin)
        box = self.browser.rect(end)
        self.browser.screenshot(
            path,
            clip={
                "x": 0,
                "y": 0,
                "width": self.browser.evaluate("window.innerWidth"),
                "height": box["y"] + box["height"] + margin,
            },
        )

    def capture_sheet(self, path):
        """The whole form, to the end of its sheet.

        Of the transcripts at the end (managers only), the tabs only.
        """
        self.capture_top(
            path,
            "document.querySelector('.o_form_sheet .o_notebook_headers')"
            " || document.querySelector('.o_form_sheet')",
            margin=4,
        )

    def capture_groups(self, path, *fields):
        """The sheet's width, over the groups that hold these fields."""
        groups = [f"({GROUP_JS})({json.dumps(name)})" for name in fields]
        for group in groups:
            self.browser.fit(group)
        sheet = self.browser.rect("document.querySelector('.o_form_sheet')")
        boxes = [self.browser.rect(group) for group in groups]
        top = min(box["y"] for box in boxes)
        bottom = max(box["y"] + box["height"] for box in boxes)
        self.browser.screenshot(
            path,
            clip={
                "x": sheet["x"],
                "y": top - 8,
                "width": sheet["width"],
                "height": bottom - top + 18,
            },
        )

    def capture_all(self, short):
        admin = self.admin()
        browser = self.browser
        # The list with the status badges, wide enough for its columns.
        browser.log_in(admin)
        browser.open(
            f"{self.server.url}/odoo/{ACTION}", READY["list"], width=LIST_WIDTH
        )
        self.capture_top(
            self.path("list", short),
            "document.querySelector('.o_list_renderer table')",
            margin=16,
        )
        # The whole form, and the delivery check of the account whose test
        # message went to spam.
        self.form(admin, "sales")
        self.capture_sheet(self.path("form", short))
        self.form(admin, "news")
        self.capture_groups(
            self.path("delivery", short), "test_state", "roundtrip_state"
        )
        # The wait for the mailbox, as whoever pressed the button sees it.
        self.servers.deliver_to("news@acme-news.example", "Junk", AT_RISK, 8.0)
        browser.click("button[name='action_send_test_message']")
        waiting = (
            "[...document.querySelectorAll('.o_notification')]"
            ".filter(n => /\\d+ \\S+ 20 /.test(n.textContent))"
        )
        browser.wait_until(f"{waiting}.length > 0", settle=0.8)
        browser.screenshot(
            self.path("progress", short),
            clip=browser.rect(f"{waiting}.pop()", margin=12),
        )
        self.wait_checked("news")
        # A failed login, and a self-signed certificate.
        self.form(admin, "support")
        server_to_result = ("smtp_host", "smtp_authentication", "test_state")
        self.capture_groups(self.path("failed", short), *server_to_result)
        self.form(admin, "warehouse")
        self.capture_groups(self.path("certificate", short), *server_to_result)
        # Microsoft 365: to connect, then connected.
        self.connect_microsoft(False)
        self.form(admin, "microsoft")
        server = ("smtp_host", "smtp_authentication")
        self.capture_groups(self.path("oauth", short), *server)
        self.connect_microsoft(True)
        self.form(admin, "microsoft")
        self.capture_groups(self.path("oauth_connected", short), *server)
        self.connect_microsoft(False)
        # The salesperson: their preferences, and their account, opened from
        # the app's first menu, "My E-mail Account".
        browser.log_in(self.salesperson())
        browser.open(f"{self.server.url}/odoo", ".o_user_menu")
        browser.click(".o_user_menu button")
        browser.wait_for(".dropdown-item[data-menu='preferences']", settle=0.5)
        browser.click(".dropdown-item[data-menu='preferences']")
        browser.wait_for(".modal .o_form_view .o_notebook", settle=0.5)
        browser.click(".modal .o_notebook a[name='email_account']")
        browser.wait_for(".modal .o_notebook [name='email_account_personal_ids']")
        modal = "document.querySelector('.modal-content')"
        browser.fit(modal, margin=32)
        box = browser.rect(modal)
        browser.screenshot(
            self.path("preferences", short),
            clip={**box, "height": box["height"] - 1},
        )
        browser.open(f"{self.server.url}/odoo", ".o_navbar_apps_menu")
        browser.click(".o_navbar_apps_menu button")
        app = "[data-menu-xmlid='email_account.email_account_menu_root']"
        browser.wait_for(app, settle=0.5)
        browser.click(app)
        browser.wait_for(READY["form"])
        self.capture_sheet(self.path("personal", short))

    def run(self):
        say("setting up the accounts")
        self.set_up()
        for short, lang in LANGS.items():
            say(f"checking the accounts in {lang}")
            self.set_language(lang)
            self.check_all(lang)
            say(f"capturing the screens in {lang}")
            self.capture_all(short)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="email_account_screenshots")
    parser.add_argument("--port", type=int, help="Odoo's port (default: a free one)")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the database and its work folder, and reuse them next time",
    )
    parser.add_argument("--out", default=str(ROOT / "static" / "description"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    # Below Odoo's extra-large breakpoint the chatter goes under the form, out
    # of the picture: only the addon's own screen is captured.
    parser.add_argument("--width", type=int, default=1360)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.keep:
        # The kept database's files and encryption key stay beside it.
        folder = Path(tempfile.gettempdir()) / f"{args.db}_screenshots"
        folder.mkdir(exist_ok=True)
    else:
        folder = Path(tempfile.mkdtemp(prefix="email_account_screenshots_"))
    # Only a database that an earlier run kept, with its folder, is reused.
    reuse = args.keep and (folder / "odoo.conf").exists()
    odoo = None
    try:
        with Servers(folder) as servers:
            odoo = OdooServer(folder, args.db, args.port or free_port(), servers)
            try:
                odoo.start(reuse)
                browser = Chromium(args.chromium, args.width, args.height)
                try:
                    Screens(odoo, servers, browser, out).run()
                finally:
                    browser.close()
            finally:
                odoo.stop()
    finally:
        if odoo is not None and not args.keep:
            odoo.drop()
        if args.keep:
            say(f"kept the database {args.db} and {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
