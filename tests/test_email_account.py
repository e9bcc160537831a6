"""The email.account model: defaults, validation and secret storage."""

from odoo.exceptions import ValidationError
from odoo.tests import Form, tagged
from odoo.tools import mute_logger

from odoo.addons.email_account.tools import secret_box

from .common import EmailAccountCase


@tagged("post_install", "-at_install")
class TestEmailAccount(EmailAccountCase):
    def test_defaults(self):
        account = self.env["email.account"].create(
            {"name": "Bare", "sender_email": "bare@example.com", "smtp_host": "mail"}
        )
        self.assertEqual(account.smtp_port, 25)
        self.assertEqual(account.smtp_encryption, "none")
        self.assertEqual(account.smtp_timeout, 30)
        self.assertEqual(account.test_state, "untested")
        self.assertFalse(account.smtp_auth_required)
        self.assertEqual(account.company_id, self.env.company)
        self.assertTrue(account.active)

    def test_form_defaults_and_port_follows_security(self):
        form = Form(self.env["email.account"])
        self.assertEqual(form.smtp_port, 25)
        form.smtp_encryption = "starttls"
        self.assertEqual(form.smtp_port, 587)
        form.smtp_encryption = "ssl"
        self.assertEqual(form.smtp_port, 465)
        # A port the user typed is theirs: changing security keeps it.
        form.smtp_port = 2525
        form.smtp_encryption = "starttls"
        self.assertEqual(form.smtp_port, 2525)

    def test_empty_or_blank_host_is_rejected(self):
        for host in ("", "   "):
            with (
                self.subTest(host=host),
                self.assertRaisesRegex(ValidationError, "Enter the SMTP server"),
            ):
                self.account.smtp_host = host
                self.account.flush_recordset()

    def test_malformed_host_is_rejected(self):
        for host in ("smtp example.com", "-bad.example.com", "a..b", "x" * 300):
            with (
                self.subTest(host=host),
                self.assertRaisesRegex(
                    ValidationError, "not a valid host name or IP address"
                ),
            ):
                self.account.smtp_host = host

    def test_host_forms_accepted(self):
        for host in (
            "smtp.example.com",
            "10.0.0.5",
            "::1",
            "mail",
            "smtp.παράδειγμα.gr",
            # Internal names may hold underscores, which DNS allows.
            "mail_relay.corp.example",
        ):
            self.account.smtp_host = host
            self.assertEqual(self.account.smtp_host, host)

    def test_port_out_of_range_is_rejected(self):
        for port in (0, -1, 70000):
            with (
                self.subTest(port=port),
                self.assertRaisesRegex(
                    ValidationError, r"between 1 and 65535 \(you entered %s\)" % port
                ),
            ):
                self.account.smtp_port = port

    def test_timeout_out_of_range_is_rejected(self):
        for timeout in (0, 301, 86400):
            with (
                self.subTest(timeout=timeout),
                self.assertRaisesRegex(
                    ValidationError,
                    "The SMTP timeout must be between 1 and 300 seconds",
                ),
            ):
                self.account.smtp_timeout = timeout

    def test_malformed_sender_email_is_rejected(self):
        for email in ("sales", "sales@", "sales@example", "a b@example.com"):
            with (
                self.subTest(email=email),
                self.assertRaisesRegex(
                    ValidationError, "is not a valid e-mail address"
                ),
            ):
                self.account.sender_email = email

    def test_sender_email_is_normalized(self):
        self.account.sender_email = "  Sales@Example.COM "
        self.assertEqual(self.account.sender_email, "sales@example.com")

    def test_control_characters_are_rejected_in_every_text_field(self):
        Account = self.env["email.account"]
        for field_name in ("name", "username", "sender_name", "smtp_login"):
            label = Account._fields[field_name].string
            with (
                self.subTest(field=field_name),
                self.assertRaisesRegex(
                    ValidationError, f"The field “{label}” contains control characters"
                ),
            ):
                Account.create(
                    self.account_values(**{field_name: "evil\r\nBcc: x@example.com"})
                )

    def test_unicode_line_separators_are_rejected_like_line_breaks(self):
        # Some mail software folds a header at them: a check would pass and
        # real sending fail, or a header be injected.
        Account = self.env["email.account"]
        for separator in ("\u2028", "\u2029", "\u0085"):
            for field_name in ("sender_name", "name", "smtp_login"):
                with (
                    self.subTest(field=field_name, separator=hex(ord(separator))),
                    self.assertRaises(ValidationError),
                ):
                    Account.create(
                        self.account_values(**{field_name: f"Sales{separator}Team"})
                    )

    def test_form_warns_before_a_stored_password_is_dropped(self):
        spec = {"smtp_host": {}, "smtp_port": {}, "password_set": {}}
        result = self.account.onchange(
            {"smtp_host": "mail.example.net"}, ["smtp_host"], spec
        )
        self.assertIn("will be removed", result["warning"]["title"])
        result = self.account.onchange({"smtp_timeout": 20}, ["smtp_timeout"], spec)
        self.assertNotIn("warning", result)

    def test_form_warns_only_when_saving_drops_the_password(self):
        spec = {"smtp_host": {}, "smtp_login": {}, "password_set": {}}
        # Saving strips the host and takes an empty login as none: the
        # password stays, and the form does not say otherwise.
        result = self.account.onchange(
            {"smtp_host": " 127.0.0.1 ", "smtp_login": ""},
            ["smtp_host", "smtp_login"],
            spec,
        )
        self.assertNotIn("warning", result)
        self.account.write({"smtp_host": " 127.0.0.1 ", "smtp_login": ""})
        self.assertTrue(self.account.password_set)

    def test_rejected_input_loses_nothing(self):
        with self.assertRaises(ValidationError), self.env.cr.savepoint():
            self.account.write({"smtp_port": 70000, "name": "Renamed"})
        self.account.invalidate_recordset()
        self.assertEqual(self.account.smtp_port, 25)
        self.assertEqual(self.account.name, "Sales")

    def test_password_is_write_only_and_encrypted_at_rest(self):
        self.assertTrue(self.account.password_set)
        self.assertFalse(self.account.password)
        self.env.cr.execute(
            "SELECT password_token FROM email_account WHERE id = %s", [self.account.id]
        )
        token = self.env.cr.fetchone()[0]
        self.assertTrue(token)
        self.assertNotIn("s3cret-Pa55", token)
        self.assertEqual(secret_box.decrypt(token), "s3cret-Pa55")
        self.assertEqual(self.account._get_smtp_settings().password, "s3cret-Pa55")

    def test_no_clear_password_anywhere_in_the_account_table(self):
        self.account.write({"smtp_login": "relay", "smtp_password": "relay-Pa55"})
        self.env.flush_all()
        self.env.cr.execute("SELECT row_to_json(a)::text FROM email_account a")
        dump = " ".join(row[0] for row in self.env.cr.fetchall())
        self.assertNotIn("s3cret-Pa55", dump)
        self.assertNotIn("relay-Pa55", dump)

    def test_empty_password_keeps_the_stored_one(self):
        self.account.write({"password": False, "name": "Sales 2"})
        self.assertEqual(self.account._get_smtp_settings().password, "s3cret-Pa55")

    def test_separate_credentials(self):
        self.account.write(
            {
                "smtp_auth_required": True,
                "smtp_login": "relay-user",
                "smtp_password": "relay-Pa55",
            }
        )
        settings = self.account._get_smtp_settings()
        self.assertEqual(settings.credentials(), ("relay-user", "relay-Pa55"))
        # Another login is another destination for the password: it goes
        # unless the same save brings one.
        self.account.write({"smtp_login": False, "password": "n3w-Pa55"})
        settings = self.account._get_smtp_settings()
        self.assertEqual(settings.credentials(), ("sales@example.com", "n3w-Pa55"))

    def test_copy_keeps_settings_but_not_secrets_nor_test_result(self):
        self.account.sudo().write({"test_state": "ok"})
        copy = self.account.copy()
        self.assertEqual(copy.name, "Sales (copy)")
        self.assertEqual(copy.smtp_host, self.account.smtp_host)
        self.assertFalse(copy.password_set)
        self.assertEqual(copy.test_state, "untested")

    def test_changes_are_tracked_in_the_chatter(self):
        # The class environment switches tracking off for speed: not here.
        env = self.env(context={})
        account = env["email.account"].create(self.account_values(name="Tracked"))
        # Changes made in the transaction that creates a record are not
        # tracked: end that part as a commit would.
        env.flush_all()
        env.cr.precommit.run()
        account.smtp_port = 587
        env.flush_all()
        env.cr.precommit.run()
        account.invalidate_recordset(["message_ids"])
        tracking = account.message_ids.tracking_value_ids
        self.assertEqual(tracking.field_id.name, "smtp_port")
        self.assertEqual(
            (tracking.old_value_integer, tracking.new_value_integer), (25, 587)
        )

    def test_undecryptable_password_gives_a_clear_error(self):
        self.account.sudo().password_token = "not-a-token"
        with (
            mute_logger("odoo.addons.email_account"),
            self.assertRaisesRegex(Exception, "cannot be decrypted"),
        ):
            self.account._get_smtp_settings()

    def test_check_action_is_bound_to_the_model(self):
        action = self.env.ref("email_account.email_account_action_check_settings")
        self.assertEqual(action.binding_model_id.model, "email.account")
        self.assertIn(
            self.env.ref("email_account.group_email_account_manager"), action.group_ids
        )
