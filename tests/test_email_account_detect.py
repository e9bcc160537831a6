"""Setting an account up from its address, against loopback servers.

The detection's system parameters point it at a loopback DNS server (every
name resolves there), a loopback HTTP server (configuration files and the
ISP database) and loopback SMTP servers (the probe): nothing else is asked.
"""

import logging

from odoo.exceptions import AccessError
from odoo.tests import Form, tagged

from odoo.addons.email_account.smtp_engine.tests.detect_servers import (
    LoopbackDnsServer,
    LoopbackHttpServer,
    client_config,
)
from odoo.addons.email_account.smtp_engine.tests.servers import (
    LoopbackSmtpServer,
    refused_port,
)

from .common import EmailAccountCase, trust_test_certificates

EMAIL = "sales@example.test"


@tagged("post_install", "-at_install")
class TestEmailAccountDetect(EmailAccountCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certs = trust_test_certificates(cls)
        cls.dns = cls.enterClassContext(LoopbackDnsServer())
        cls.http = cls.enterClassContext(LoopbackHttpServer())
        cls.smtp_ssl = cls.enterClassContext(
            LoopbackSmtpServer(tls="ssl", certs=cls.certs)
        )
        params = cls.env["ir.config_parameter"].sudo()
        params.set_param(
            "email_account.detect_nameservers", f"127.0.0.1:{cls.dns.port}"
        )
        params.set_param(
            "email_account.detect_autoconfig_urls",
            f"http://autoconfig.{{domain}}:{cls.http.port}/mail/config-v1.1.xml",
        )
        params.set_param(
            "email_account.detect_ispdb_url",
            f"http://ispdb.test:{cls.http.port}/v1.1/{{domain}}",
        )
        params.set_param("email_account.detect_probe_hosts", "localhost")
        # Only ports where nothing listens, unless a test says otherwise.
        params.set_param("email_account.detect_probe", f"{refused_port()}/ssl")
        cls.dns.add("localhost", "A", "127.0.0.1")
        cls.dns.add("autoconfig.example.test", "A", "127.0.0.1")
        cls.dns.add("ispdb.test", "A", "127.0.0.1")

    def setUp(self):
        super().setUp()
        records = dict(self.dns.records)
        documents = dict(self.http.documents)

        def restore():
            self.dns.records.clear()
            self.dns.records.update(records)
            self.http.documents.clear()
            self.http.documents.update(documents)

        self.addCleanup(restore)

    def new_form(self):
        form = Form(self.env["email.account"].with_user(self.manager))
        form.name = "Sales"
        return form

    def test_typing_the_sender_address_fills_the_server(self):
        self.dns.add(
            "_submission._tcp.example.test", "SRV", "0 1 587 smtp.example.test."
        )
        form = self.new_form()

        form.sender_email = EMAIL

        self.assertEqual(form.smtp_host, "smtp.example.test")
        self.assertEqual(form.smtp_port, 587)
        self.assertEqual(form.smtp_encryption, "starttls")
        self.assertEqual(form.smtp_detected_source, "srv")
        self.assertIn("_submission._tcp.example.test", form.smtp_detected_note)
        account = form.save()
        self.assertEqual(account.smtp_detected_source, "srv")
        self.assertTrue(account.smtp_settings_detected)

    def test_typing_the_sender_address_keeps_a_typed_server(self):
        self.dns.add(
            "_submission._tcp.example.test", "SRV", "0 1 587 smtp.example.test."
        )
        form = self.new_form()
        form.smtp_host = "mail.example.test"

        form.sender_email = EMAIL

        self.assertEqual(form.smtp_host, "mail.example.test")
        self.assertEqual(form.smtp_port, 25)
        self.assertFalse(form.smtp_detected_source)

    def test_a_port_found_with_its_security_is_kept(self):
        # STARTTLS on 25: the port follows the security only when typed.
        self.dns.add(
            "_submission._tcp.example.test", "SRV", "0 1 25 smtp.example.test."
        )
        form = self.new_form()

        form.sender_email = EMAIL

        self.assertEqual((form.smtp_port, form.smtp_encryption), (25, "starttls"))

    def test_port_follows_a_security_changed_after_detection(self):
        self.dns.add(
            "_submission._tcp.example.test", "SRV", "0 1 587 smtp.example.test."
        )
        form = self.new_form()
        form.sender_email = EMAIL

        form.smtp_encryption = "ssl"

        self.assertEqual(form.smtp_port, 465)
        self.assertFalse(form.smtp_settings_detected)

    def test_autoconfig_file_fills_the_server(self):
        self.http.documents[("autoconfig.example.test", "/mail/config-v1.1.xml")] = (
            client_config("out.example.test", 465, "SSL")
        )
        form = self.new_form()

        form.sender_email = EMAIL

        self.assertEqual(
            (form.smtp_host, form.smtp_port, form.smtp_encryption),
            ("out.example.test", 465, "ssl"),
        )
        self.assertEqual(form.smtp_detected_source, "autoconfig")

    def test_known_provider_brings_its_note(self):
        form = self.new_form()

        form.sender_email = "someone@gmail.com"

        self.assertEqual(form.smtp_host, "smtp.gmail.com")
        self.assertEqual(form.smtp_detected_source, "provider")
        self.assertIn("app password", form.smtp_detected_note)

    def test_button_probes_and_reports_an_unverified_certificate(self):
        self.env["ir.config_parameter"].sudo().set_param(
            "email_account.detect_probe", f"{self.smtp_ssl.port}/ssl"
        )
        self.env["ir.config_parameter"].sudo().set_param(
            "email_account.detect_probe_hosts", "smtp.{domain}"
        )
        self.dns.add("smtp.example.test", "A", "127.0.0.1")
        account = self.env["email.account"].create(
            self.account_values(sender_email=EMAIL, password=False)
        )

        action = account.with_user(self.manager).action_detect_settings()

        self.assertEqual(
            (account.smtp_host, account.smtp_port, account.smtp_encryption),
            ("smtp.example.test", self.smtp_ssl.port, "ssl"),
        )
        self.assertEqual(account.smtp_detected_source, "probe")
        self.assertIn("could not be verified", account.smtp_detected_note)
        self.assertEqual(action["params"]["type"], "success")

    def test_button_drops_the_stored_password_with_the_old_server(self):
        self.dns.add(
            "_submissions._tcp.example.test", "SRV", "0 1 465 smtp.example.test."
        )
        account = self.env["email.account"].create(
            self.account_values(sender_email=EMAIL)
        )
        self.assertTrue(account.password_set)

        account.with_user(self.manager).action_detect_settings()

        self.assertEqual(account.smtp_host, "smtp.example.test")
        self.assertFalse(account.password_set)

    def test_button_keeps_the_password_when_nothing_changes(self):
        self.dns.add(
            "_submissions._tcp.example.test", "SRV", "0 1 465 smtp.example.test."
        )
        account = self.env["email.account"].create(
            self.account_values(
                sender_email=EMAIL,
                smtp_host="smtp.example.test",
                smtp_port=465,
                smtp_encryption="ssl",
            )
        )

        account.with_user(self.manager).action_detect_settings()

        self.assertTrue(account.password_set)
        self.assertEqual(account.smtp_detected_source, "srv")

    def test_button_says_when_nothing_is_found(self):
        account = self.env["email.account"].create(
            self.account_values(sender_email="sales@nowhere.test")
        )

        with self.assertLogs(
            "odoo.addons.email_account.models.email_account_detect", logging.INFO
        ) as logged:
            action = account.with_user(self.manager).action_detect_settings()

        self.assertEqual(action["params"]["type"], "warning")
        # The server log says what was tried.
        self.assertIn("Settings detection for nowhere.test", logged.output[-1])
        self.assertIn("srv: nothing", logged.output[-1])
        self.assertIn(
            "No settings were found for nowhere.test", account.smtp_detected_note
        )
        self.assertEqual(account.smtp_host, "127.0.0.1")

    def test_users_cannot_detect_settings(self):
        with self.assertRaises(AccessError):
            self.account.with_user(self.user).action_detect_settings()
