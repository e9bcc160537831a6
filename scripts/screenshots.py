#!/usr/bin/env python3
"""Capture the account form and list of a running Odoo, in English and Greek.

Starts no Odoo: give it the URL of a running server, a database where the
addon and the Greek language are installed, and a login. For each language it
sets the user's language, optionally presses "Check Account Settings ..." on
the account (so that the stored test result is in that language too), and
captures the list and the form with Debian's headless chromium, driven over
the DevTools protocol:

    static/description/screenshot_list_en.png  screenshot_form_en.png
    static/description/screenshot_list_el.png  screenshot_form_el.png

    python3 scripts/screenshots.py --url http://127.0.0.1:8169 --db DB \\
        --login admin --password admin [--account-id ID] [--press-check]

Needs chromium (``apt-get install chromium``) and websocket-client (an Odoo
test dependency). The user's language is restored at the end.
"""

import argparse
import base64
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
LANGS = {"en": "en_US", "el": "el_GR"}
ACTION = "action-email_account.email_account_action"
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
        with self.opener.open(request, timeout=120) as response:
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

    @property
    def session_id(self):
        return next(c.value for c in self.cookies if c.name == "session_id")


class Chromium:
    """A headless chromium with a fresh profile, driven over DevTools."""

    def __init__(self, binary, width, height):
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
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

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

    def evaluate(self, expression):
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True
        )
        return result.get("result", {}).get("value")

    def open(self, url, selector, settle=1.5, timeout=60):
        self.send("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        check = (
            f"!!document.querySelector({json.dumps(selector)})"
            " && !document.querySelector('.o_loading_indicator, .o_blockUI')"
        )
        while not self.evaluate(check):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url}: {selector} did not appear")
            time.sleep(0.25)
        # Let fonts, badges and the chatter finish rendering.
        time.sleep(settle)

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", format="png")["data"]
        Path(path).write_bytes(base64.b64decode(data))

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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="e.g. http://127.0.0.1:8169")
    parser.add_argument("--db", required=True)
    parser.add_argument("--login", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--account-id", type=int, help="the account of the form")
    parser.add_argument(
        "--press-check",
        action="store_true",
        help="press the check button in each language before the capture",
    )
    parser.add_argument("--out", default=str(ROOT / "static" / "description"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    # Below Odoo's extra-large breakpoint the chatter goes under the form, out
    # of the picture: only the addon's own screen is captured.
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=912)
    args = parser.parse_args(argv)

    odoo = Odoo(args.url, args.db, args.login, args.password)
    account_id = (
        args.account_id
        or odoo.execute("email.account", "search", [], limit=1, order="id")[0]
    )
    original_lang = odoo.execute("res.users", "read", [odoo.uid], ["lang"])[0]["lang"]
    active = {
        lang["code"] for lang in odoo.execute("res.lang", "search_read", [], ["code"])
    }
    if missing := set(LANGS.values()) - active:
        sys.exit(f"activate {', '.join(sorted(missing))} in {args.db} first")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    browser = Chromium(args.chromium, args.width, args.height)
    try:
        for short, lang in LANGS.items():
            odoo.execute("res.users", "write", [odoo.uid], {"lang": lang})
            # A session keeps the language of its login: log in again.
            session = Odoo(args.url, args.db, args.login, args.password)
            browser.send(
                "Network.setCookie",
                name="session_id",
                value=session.session_id,
                url=session.url,
                httpOnly=True,
            )
            if args.press_check:
                odoo.execute(
                    "email.account",
                    "action_send_test_message",
                    [account_id],
                    context={"lang": lang},
                )
            for view, url in (
                ("list", f"{odoo.url}/odoo/{ACTION}"),
                ("form", f"{odoo.url}/odoo/{ACTION}/{account_id}"),
            ):
                browser.open(url, READY[view])
                path = out / f"screenshot_{view}_{short}.png"
                browser.screenshot(path)
                print(path)
    finally:
        browser.close()
        odoo.execute("res.users", "write", [odoo.uid], {"lang": original_lang})
    return 0


if __name__ == "__main__":
    sys.exit(main())
