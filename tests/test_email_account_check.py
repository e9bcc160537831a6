"""The "Check Account Settings ..." button and server action, for real.

Each test sends through a real SMTP server on loopback (aiosmtpd) and
asserts what the server received and what the account stored and showed.
"""

from unittest.mock import patch

from odoo.exceptions import ValidationError
from odoo.tests import Form, tagged
from odoo.tools import config

from odoo.addons.email_account.smtp_engine.tests.servers import (
    LoopbackSmtpServer,
    SilentServer,
    refused_port,
)

from .common import EmailAccountCase, trust_test_certificates

PASSWORD = "s3cret-Pa55"
LOGIN_PASSWORD = "relay-Pa55"


@tagged("post_install", "-at_install")
class TestEmailAccountCheck(EmailAccountCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Our test CA, as an administrator with a private CA would set it.
        cls.certs = trust_test_certificates(cls)
        cls.plain = cls.enterClassContext(LoopbackSmtpServer())
        cls.starttls = cls.enterClassContext(
            LoopbackSmtpServer(
                tls="starttls",
                require_starttls=True,
                certs=cls.certs,
                auth={"sales@example.com": PASSWORD, "relay": LOGIN_PASSWORD},
            )
        )
        cls.account.write({"smtp_port": cls.plain.port, "smtp_timeout": 5})

    def setUp(self):
        super().setUp()
        for server in (self.plain, self.starttls):
            server.messages.clear()

    def secure_account(self, **overrides):
        values = {
            "name": "Secure",
            "smtp_port": self.starttls.port,
            "smtp_encryption": "starttls",
            "smtp_auth_required": True,
            "smtp_timeout": 5,
        }
        values.update(overrides)
        return self.env["email.account"].create(self.account_values(**values))

    def test_button_delivers_the_test_message_to_the_account(self):
        action = self.account.action_send_test_message()

        self.assertEqual(len(self.plain.messages), 1)
        received = self.plain.messages[0]
        self.assertEqual(received.mail_from, "sales@example.com")
        self.assertEqual(received.rcpt_tos, ["sales@example.com"])
        message = received.message
        self.assertEqual(message["From"].addresses[0].display_name, "Sales Department")
        self.assertEqual(message["To"].addresses[0].addr_spec, "sales@example.com")
        self.assertIn("Sales", message["Subject"])
        self.assertNotIn(PASSWORD, received.raw.decode("utf-8", "replace"))

        self.assertEqual(self.account.test_state, "ok")
        self.assertEqual(self.account.test_user_id, self.env.user)
        self.assertTrue(self.account.test_date)
        self.assertIn("sales@example.com", self.account.test_message)
        self.assertIn(
            "mail from:<sales@example.com>", self.account.test_transcript.lower()
        )
        self.assertEqual(action["params"]["type"], "success")
        self.assertEqual(action["params"]["message"], self.account.test_message)
        chatter = self.account.message_ids[0]
        self.assertIn("sales@example.com", chatter.body)

    def test_date_in_the_message_follows_the_user_language(self):
        self.env["res.lang"]._activate_lang("de_DE")
        for lang, pattern in (
            ("en_US", r"Sent at: \d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2} [AP]M"),
            ("de_DE", r"\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}:\d{2}"),
        ):
            self.plain.messages.clear()
            self.account.with_context(lang=lang).action_send_test_message()
            body = self.plain.messages[0].message.get_body(("plain",)).get_content()
            with self.subTest(lang=lang):
                self.assertRegex(body, pattern)
                self.assertNotRegex(body, r"\d{4}-\d{2}-\d{2}")

    def test_starttls_login_with_the_account_credentials(self):
        account = self.secure_account()
        account.action_send_test_message()
        self.assertEqual(account.test_state, "ok", account.test_message)
        self.assertEqual(self.starttls.messages[0].auth_login, "sales@example.com")
        self.assertNotIn(PASSWORD, account.test_transcript)

    def test_separate_login_is_used_when_given(self):
        account = self.secure_account(smtp_login="relay", smtp_password=LOGIN_PASSWORD)
        account.action_send_test_message()
        self.assertEqual(account.test_state, "ok", account.test_message)
        self.assertEqual(self.starttls.messages[0].auth_login, "relay")
        self.assertNotIn(LOGIN_PASSWORD, account.test_transcript)

    def test_wrong_password_names_the_step_and_what_to_do(self):
        account = self.secure_account(password="wrong")
        action = account.action_send_test_message()
        self.assertEqual(account.test_state, "failed")
        self.assertEqual(account.test_step, "Logging in")
        self.assertIn("535", account.test_message)
        self.assertIn("refused the user name or password", account.test_message)
        self.assertFalse(self.starttls.messages)
        self.assertNotIn("wrong", account.test_transcript.replace("wrong version", ""))
        self.assertEqual(action["params"]["type"], "danger")
        self.assertTrue(action["params"]["sticky"])

    def test_untrusted_certificate_is_refused(self):
        with patch.dict(config.options, {"email_account_ca_file": ""}):
            account = self.secure_account()
            account.action_send_test_message()
        self.assertEqual(account.test_state, "failed")
        self.assertEqual(account.test_step, "Setting up the encrypted connection (TLS)")
        self.assertIn("certificate", account.test_message)

    def test_self_signed_certificate_is_pinned_from_a_failed_check(self):
        self_signed = self.enterContext(
            LoopbackSmtpServer(
                tls="starttls",
                certs=self.certs,
                cert="self_signed",
                auth={"sales@example.com": PASSWORD},
            )
        )
        account = self.secure_account(smtp_port=self_signed.port)
        account.action_send_test_message()
        self.assertEqual(account.test_state, "failed")
        fingerprint = account.test_certificate_fingerprint
        self.assertRegex(fingerprint, r"^([0-9A-F]{2}:){31}[0-9A-F]{2}$")
        self.assertIn(fingerprint, account.test_message)
        self.assertIn("Subject:", account.test_message)
        self.assertFalse([c for c in self_signed.commands if c.startswith("AUTH")])

        account.action_trust_certificate()
        self.assertEqual(account.smtp_pinned_certificate, fingerprint)
        # The pin decides where the password may go: enter it again.
        self.assertFalse(account.password_set)
        account.password = PASSWORD
        account.action_send_test_message()
        self.assertEqual(account.test_state, "ok", account.test_message)
        self.assertEqual(self_signed.messages[0].auth_login, "sales@example.com")

        # Another certificate, even one a trusted authority issued: refused.
        account.write({"smtp_port": self.starttls.port, "password": PASSWORD})
        account.action_send_test_message()
        self.assertEqual(account.test_state, "failed")
        self.assertIn("not the pinned one", account.test_message)
        self.assertFalse(self.starttls.messages)

    def test_malformed_pin_is_refused(self):
        with self.assertRaisesRegex(ValidationError, "not a SHA-256 fingerprint"):
            self.account.smtp_pinned_certificate = "AB:CD"

    def test_failed_check_keeps_the_settings_and_allows_saving(self):
        self.account.smtp_port = refused_port()
        with Form(self.account) as form:
            form.sender_name = "Renamed Sender"
        self.account.action_send_test_message()
        self.assertEqual(self.account.test_state, "failed")
        self.assertEqual(self.account.sender_name, "Renamed Sender")
        with Form(self.account) as form:
            form.smtp_port = self.plain.port
        self.assertEqual(self.account.smtp_port, self.plain.port)

    def test_server_action_checks_many_accounts_and_sums_up(self):
        silent = self.enterContext(SilentServer())
        good = self.secure_account(name="Good")
        refused = self.env["email.account"].create(
            self.account_values(name="Refused", smtp_port=refused_port())
        )
        hanging = self.env["email.account"].create(
            self.account_values(name="Hanging", smtp_port=silent.port, smtp_timeout=1)
        )
        accounts = self.account | good | refused | hanging
        server_action = self.env.ref(
            "email_account.email_account_action_check_settings"
        )
        action = server_action.with_context(
            active_model="email.account", active_ids=accounts.ids
        ).run()
        # Many accounts are checked in the background, never in the request.
        self.assertEqual(action["params"]["title"], "Checking in the background")
        self.assertFalse(self.plain.messages)
        self.env["email.account"]._cron_run_checks()

        self.assertEqual(
            accounts.mapped("test_state"), ["ok", "ok", "failed", "failed"]
        )
        self.assertEqual(len(self.plain.messages) + len(self.starttls.messages), 2)
        self.assertEqual(refused.test_step, "Connecting to the server")
        self.assertIn("Nothing accepted the connection", refused.test_message)
        self.assertEqual(hanging.test_step, "Waiting for the server's greeting")
        self.assertIn("did not answer in time", hanging.test_message)
        summary = accounts._check_notification()["params"]
        self.assertEqual(summary["title"], "2 of 4 accounts work")
        self.assertIn("Refused:", summary["message"])
        self.assertIn("Hanging:", summary["message"])
        self.assertNotIn("Good:", summary["message"])
