"""Microsoft 365 and Google: core's sign-in flows, encrypted tokens, XOAUTH2.

The provider's token endpoint is the one thing outside the process: it runs
here as a loopback HTTP server. Microsoft's endpoint is a system parameter
of core's flow; Google's is fixed in core's code, so its one HTTP call is
sent to the same loopback server. The SMTP servers are real aiosmtpd
servers on loopback that accept only the right bearer token.
"""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest.mock import patch
from urllib.parse import parse_qs, urlsplit

import requests

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import Form, HttpCase, tagged
from odoo.tools import mute_logger

from odoo.addons.base.models.ir_mail_server import IrMail_Server
from odoo.addons.base.tests.common import DISABLED_MAIL_CONTEXT
from odoo.addons.email_account.smtp_engine.tests.servers import (
    LoopbackSmtpServer,
)

from .common import JsonRpcMixin, load_greek, new_user, trust_test_certificates

MAILBOX = "sales@example.com"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
_real_post = requests.post


def id_token(email):
    """An unsigned JWT as the token endpoint returns it (claims only)."""

    def part(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'email': email})}.signature"


class TokenEndpoint:
    """A loopback OAuth 2.0 token endpoint that records what it is asked.

    Each grant gives the next access token of ``issue`` ("access-1",
    "access-2", ...), unless ``refuse`` holds the error of a revoked grant.
    """

    def __init__(self):
        self.requests = []
        self.refuse = None
        self.mailbox = MAILBOX
        self._server = None

    def start(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                form = parse_qs(self.rfile.read(length).decode())
                owner.requests.append({k: v[0] for k, v in form.items()})
                if owner.refuse:
                    status, body = 400, owner.refuse
                else:
                    number = len(owner.requests)
                    status, body = (
                        200,
                        {
                            "token_type": "Bearer",
                            "expires_in": 3600,
                            "access_token": f"access-{number}",
                            "refresh_token": f"refresh-{number}",
                            "id_token": id_token(owner.mailbox),
                        },
                    )
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, name="token-endpoint", daemon=True
        ).start()
        return self

    @property
    def url(self):
        return f"http://127.0.0.1:{self._server.server_port}/"

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


class OAuthCase(JsonRpcMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context=dict(cls.env.context, **DISABLED_MAIL_CONTEXT))
        certs = trust_test_certificates(cls)
        cls.tokens = cls.enterClassContext(TokenEndpoint())
        cls.smtp_outlook = cls.enterClassContext(
            LoopbackSmtpServer(
                tls="starttls",
                certs=certs,
                oauth_tokens={MAILBOX: "access-1"},
                auth_refusal="535 5.7.3 Authentication unsuccessful",
            )
        )
        cls.smtp_gmail = cls.enterClassContext(
            LoopbackSmtpServer(
                tls="ssl", certs=certs, oauth_tokens={MAILBOX: "access-1"}
            )
        )
        cls.env["ir.config_parameter"].sudo().set_param(
            "microsoft_outlook.endpoint", cls.tokens.url
        )
        for provider in ("microsoft_outlook", "google_gmail"):
            cls.env["ir.config_parameter"].sudo().set_param(
                f"{provider}_client_id", f"{provider}-app"
            )
            cls.env["ir.config_parameter"].sudo().set_param(
                f"{provider}_client_secret", f"{provider}-app-secret"
            )
        # An Email Accounts manager who is no Odoo administrator.
        cls.manager = new_user(
            cls.env,
            "oauth_manager",
            "base.group_user,email_account.group_email_account_manager",
        )
        cls.outlook = cls.env["email.account"].create(
            {
                "name": "Sales (Microsoft 365)",
                "username": MAILBOX,
                "sender_email": MAILBOX,
                "smtp_authentication": "outlook",
                "smtp_host": "localhost",
                "smtp_port": cls.smtp_outlook.port,
                "smtp_encryption": "starttls",
                "smtp_auth_required": True,
                "smtp_timeout": 5,
            }
        )
        cls.gmail = cls.env["email.account"].create(
            {
                "name": "Sales (Google)",
                "username": MAILBOX,
                "sender_email": MAILBOX,
                "smtp_authentication": "gmail",
                "smtp_host": "localhost",
                "smtp_port": cls.smtp_gmail.port,
                "smtp_encryption": "ssl",
                "smtp_auth_required": True,
                "smtp_timeout": 5,
            }
        )

    def setUp(self):
        super().setUp()
        self.tokens.requests.clear()
        self.tokens.refuse = None
        self.tokens.mailbox = MAILBOX
        for server in (self.smtp_outlook, self.smtp_gmail):
            server.messages.clear()
            server.oauth_logins.clear()
            server.oauth_tokens = {MAILBOX: "access-1"}
        patcher = patch.object(IrMail_Server, "_disable_send", return_value=False)
        patcher.start()
        self.addCleanup(patcher.stop)
        # Google's token endpoint is fixed in core: its one call goes to
        # the loopback endpoint instead.
        post = patch.object(requests, "post", side_effect=self._post_to_loopback)
        post.start()
        self.addCleanup(post.stop)

    def _post_to_loopback(self, url, *args, **kwargs):
        if url == GOOGLE_TOKEN_URL:
            url = self.tokens.url + "token"
        self.assertTrue(url.startswith("http://127.0.0.1:"), url)
        return _real_post(url, *args, **kwargs)

    def sign_in(self, account):
        """Run core's sign-in for ``account`` as the manager, in a browser."""
        self.log_in(self.manager)
        action = account.with_user(self.manager).action_oauth_connect()
        query = parse_qs(urlsplit(action["url"]).query)
        route = {"outlook": "microsoft_outlook", "gmail": "google_gmail"}[
            account.smtp_authentication
        ]
        return self.url_open(
            f"/{route}/confirm?"
            + requests.compat.urlencode(
                {"code": "authorization-code", "state": query["state"][0]}
            ),
            allow_redirects=False,
        )

    def connected(self, account, expires_in=3600):
        """Store tokens as core's callback does, without the browser."""
        account.sudo().write(
            {
                "microsoft_outlook_refresh_token": "refresh-0",
                "microsoft_outlook_access_token": "access-1",
                "microsoft_outlook_access_token_expiration": int(
                    fields.Datetime.now().timestamp()
                )
                + expires_in,
            }
        )
        return account

    def stored_tokens(self, account):
        from odoo.addons.email_account.tools import secret_box

        stored = account.sudo()
        return (
            secret_box.decrypt(stored.oauth_refresh_secret),
            secret_box.decrypt(stored.oauth_access_secret),
        )

    def _refused_check(self, reply, lang):
        self.connected(self.outlook)
        self.smtp_outlook.oauth_tokens = {MAILBOX: "another token"}
        self.smtp_outlook.auth_refusal = reply
        self.addCleanup(
            setattr,
            self.smtp_outlook,
            "auth_refusal",
            "535 5.7.3 Authentication unsuccessful",
        )
        self.outlook.with_context(lang=lang).action_send_test_message()
        return self.outlook.test_message


@tagged("post_install", "-at_install")
class TestEmailAccountOAuth(OAuthCase):
    # Settings

    def test_choosing_a_provider_fills_its_documented_server(self):
        account = self.env["email.account"].create(
            {"name": "Plain", "sender_email": "a@example.com", "smtp_host": "mail.x"}
        )
        with Form(account) as form:
            form.smtp_authentication = "outlook"
            self.assertEqual(
                (form.smtp_host, form.smtp_port, form.smtp_encryption),
                ("smtp.office365.com", 587, "starttls"),
            )
            self.assertEqual(form.username, "a@example.com")
            form.smtp_authentication = "gmail"
            self.assertEqual(
                (form.smtp_host, form.smtp_port, form.smtp_encryption),
                ("smtp.gmail.com", 465, "ssl"),
            )

    # Sign-in

    def test_manager_connects_microsoft_365_through_core_sign_in(self):
        self.assertFalse(self.manager.has_group("base.group_system"))
        response = self.sign_in(self.outlook)

        self.assertEqual(response.status_code, 303, response.text[:500])
        self.assertTrue(
            response.headers["Location"].endswith(
                f"/odoo/email.account/{self.outlook.id}"
            )
        )
        self.assertEqual(self.tokens.requests[0]["grant_type"], "authorization_code")
        self.assertEqual(self.tokens.requests[0]["code"], "authorization-code")
        self.assertEqual(self.stored_tokens(self.outlook), ("refresh-1", "access-1"))
        self.assertTrue(self.outlook.oauth_connected)
        self.assertEqual(self.outlook.oauth_mailbox, MAILBOX)
        self.assertGreater(self.outlook.oauth_expiration, fields.Datetime.now())

    def test_manager_connects_google_then_sends_the_test_message(self):
        self.sign_in(self.gmail)
        self.gmail.with_user(self.manager).action_send_test_message()

        self.assertEqual(self.gmail.test_state, "ok", self.gmail.test_message)
        self.assertEqual(self.smtp_gmail.oauth_logins, [(MAILBOX, "access-1")])
        self.assertEqual(self.smtp_gmail.messages[0].rcpt_tos, [MAILBOX])

    def test_signing_in_leaves_an_archived_account_archived(self):
        self.gmail.active = False

        response = self.sign_in(self.gmail)

        self.assertEqual(response.status_code, 303, response.text[:500])
        self.assertTrue(
            response.headers["Location"].endswith(
                f"/odoo/email.account/{self.gmail.id}"
            )
        )
        self.assertTrue(self.gmail.oauth_connected)
        self.assertFalse(self.gmail.active)

    def test_sign_in_of_another_mailbox_is_refused(self):
        self.tokens.mailbox = "someone.else@example.com"
        response = self.sign_in(self.outlook)

        self.assertIn("someone.else@example.com", response.text)
        self.assertFalse(self.outlook.oauth_connected)

    def test_sign_in_started_by_one_user_cannot_be_completed_by_another(self):
        action = self.outlook.with_user(self.manager).action_oauth_connect()
        state = parse_qs(urlsplit(action["url"]).query)["state"][0]
        other = new_user(
            self.env,
            "oauth_other",
            "base.group_user,email_account.group_email_account_manager",
        )
        self.log_in(other)
        with mute_logger("odoo.addons.microsoft_outlook.controllers.main"):
            response = self.url_open(
                "/microsoft_outlook/confirm?"
                + requests.compat.urlencode({"code": "x", "state": state}),
                allow_redirects=False,
            )

        self.assertEqual(response.status_code, 403)
        self.assertFalse(self.tokens.requests)
        self.assertFalse(self.outlook.oauth_connected)

    def test_plain_user_may_not_start_a_sign_in(self):
        user = new_user(
            self.env,
            "oauth_user",
            "base.group_user,email_account.group_email_account_user",
        )
        with self.assertRaises(UserError):
            self.outlook.with_user(user).action_oauth_connect()

    # Sending

    def test_check_and_real_mail_log_in_with_xoauth2(self):
        self.connected(self.outlook)
        self.outlook.action_send_test_message()
        message_id = self.outlook._send_email_message(self._real_mail())

        self.assertEqual(self.outlook.test_state, "ok", self.outlook.test_message)
        self.assertEqual(self.smtp_outlook.oauth_logins, [(MAILBOX, "access-1")] * 2)
        self.assertEqual(len(self.smtp_outlook.messages), 2)
        self.assertEqual(
            self.smtp_outlook.messages[1].message["Message-Id"], message_id
        )
        self.assertFalse(self.tokens.requests)

    def _real_mail(self):
        from email.message import EmailMessage

        message = EmailMessage()
        message["To"] = "customer@example.org"
        message["Subject"] = "Your order"
        message.set_content("It is ready.")
        return message

    def test_expired_token_is_renewed_once_then_sent(self):
        self.connected(self.outlook, expires_in=-60)
        self.smtp_outlook.oauth_tokens = {MAILBOX: "access-1"}
        self.outlook.action_send_test_message()
        self.outlook.action_send_test_message()

        self.assertEqual(len(self.tokens.requests), 1)
        self.assertEqual(self.tokens.requests[0]["grant_type"], "refresh_token")
        self.assertEqual(self.tokens.requests[0]["refresh_token"], "refresh-0")
        self.assertEqual(self.smtp_outlook.oauth_logins, [(MAILBOX, "access-1")] * 2)
        # Microsoft hands out a new refresh token with each renewal.
        self.assertEqual(self.stored_tokens(self.outlook), ("refresh-1", "access-1"))
        self.assertEqual(self.outlook.test_state, "ok")

    def test_revoked_access_token_gives_the_sign_in_hint(self):
        self.connected(self.outlook)
        self.smtp_outlook.oauth_tokens = {MAILBOX: "another token"}
        self.outlook.action_send_test_message()

        self.assertEqual(self.outlook.test_state, "failed")
        self.assertEqual(self.outlook.test_step, "Logging in")
        self.assertIn(
            "The sign-in has expired or was revoked: connect the account again.",
            self.outlook.test_message,
        )

    def test_revoked_refresh_token_gives_the_sign_in_hint(self):
        self.connected(self.outlook, expires_in=-60)
        self.tokens.refuse = {
            "error": "invalid_grant",
            "error_description": "AADSTS50173: The provided grant has expired.",
        }
        action = self.outlook.action_send_test_message()

        self.assertEqual(self.outlook.test_state, "failed")
        self.assertEqual(self.outlook.test_step, "Logging in")
        self.assertEqual(action["params"]["type"], "danger")
        self.assertIn("AADSTS50173", action["params"]["message"])
        self.assertIn(
            "The sign-in has expired or was revoked: connect the account again.",
            self.outlook.test_message,
        )
        self.assertFalse(self.smtp_outlook.messages)

    # Secrets

    def test_tokens_reach_no_client_chatter_transcript_or_column(self):
        self.sign_in(self.outlook)
        self.outlook.action_send_test_message()
        self.authenticate("admin", "admin")
        read = self.call("email.account", "read", self.outlook.ids)
        secrets = ("access-1", "refresh-1")
        leaks = [
            json.dumps(read),
            self.outlook.sudo().test_transcript,
            *self.outlook.message_ids.mapped("body"),
        ]
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT row_to_json(a)::text FROM email_account a WHERE id = %s",
            self.outlook.ids,
        )
        leaks.append(self.env.cr.fetchone()[0])
        for secret in secrets:
            encoded = base64.b64encode(
                f"user={MAILBOX}\x01auth=Bearer {secret}\x01\x01".encode()
            ).decode()
            for text in leaks:
                self.assertNotIn(secret, str(text))
                self.assertNotIn(encoded, str(text))
        self.assertIn("XOAUTH2 ********", self.outlook.sudo().test_transcript)

    def test_changing_the_server_or_mailbox_drops_the_tokens(self):
        for change in ({"smtp_host": "127.0.0.1"}, {"username": "boss@example.com"}):
            with self.subTest(change=change):
                self.connected(self.outlook)
                self.outlook.write(change)
                self.assertFalse(self.outlook.oauth_connected)
                self.assertEqual(self.stored_tokens(self.outlook), ("", ""))

    def test_a_new_server_drops_the_sign_in_then_the_password(self):
        self.outlook.password = "Mailbox-Pa55"
        self.connected(self.outlook)

        self.outlook.write({"smtp_host": "127.0.0.1"})

        notes = self.outlook.message_ids.sorted("id")[-2:].mapped("body")
        self.assertIn("The sign-in was disconnected", notes[0])
        self.assertIn("The stored password was removed", notes[1])
        self.assertFalse(self.outlook.oauth_connected or self.outlook.password_set)

    def test_an_unrelated_change_keeps_the_tokens(self):
        self.connected(self.outlook)
        self.outlook.write({"sender_name": "Sales"})
        self.assertTrue(self.outlook.oauth_connected)

    def test_disconnect_forgets_the_tokens(self):
        self.connected(self.outlook)
        self.outlook.with_user(self.manager).action_oauth_disconnect()
        self.assertFalse(self.outlook.oauth_connected)
        self.assertFalse(self.outlook.oauth_mailbox)
        self.assertEqual(self.stored_tokens(self.outlook), ("", ""))

    # Provider replies, in English and Greek

    def test_provider_replies_name_their_cause(self):
        cases = {
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication "
            "is disabled for the Tenant.": "Microsoft 365 has SMTP AUTH turned off",
            "535 5.7.3 Authentication unsuccessful": (
                "The sign-in has expired or was revoked"
            ),
        }
        for reply, hint in cases.items():
            with self.subTest(reply=reply):
                self.assertIn(hint, self._refused_check(reply, "en_US"))


@tagged("post_install", "-at_install")
class TestEmailAccountOAuthGreek(OAuthCase):
    """The OAuth texts in Greek (they pass once el.po has these texts)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        load_greek(cls.env)

    def test_provider_replies_name_their_cause(self):
        cases = {
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication "
            "is disabled for the Tenant.": (
                "Το Microsoft 365 έχει απενεργοποιημένο το SMTP AUTH"
            ),
            "535 5.7.3 Authentication unsuccessful": (
                "Η σύνδεση έληξε ή ανακλήθηκε: συνδέστε ξανά τον λογαριασμό."
            ),
        }
        for reply, hint in cases.items():
            with self.subTest(reply=reply):
                self.assertIn(hint, self._refused_check(reply, "el_GR"))

    def test_authentication_labels(self):
        labels = dict(
            self.env["email.account"]
            .with_context(lang="el_GR")
            ._fields["smtp_authentication"]
            ._description_selection(self.env(context={"lang": "el_GR"}))
        )
        self.assertEqual(labels["password"], "Κωδικός χρήστη")
        self.assertEqual(labels["outlook"], "Microsoft 365 / Outlook (OAuth)")
        self.assertEqual(labels["gmail"], "Google (OAuth)")
