"""E-mail accounts as real senders in Odoo's mail stack.

Every test sends for real, through Odoo's own queue, to SMTP servers that run
on the loopback interface (aiosmtpd), and checks what those servers received.
Only core's test-mode switch (``_disable_send``) is patched, as core's own
SMTP tests do.
"""

import tempfile
import time
from email.message import EmailMessage

from psycopg2 import IntegrityError

from odoo.exceptions import UserError, ValidationError
from odoo.tests import TransactionCase, tagged
from odoo.tools import mute_logger

from odoo.addons.email_account.hooks import uninstall_hook
from odoo.addons.email_account.smtp_engine.tests.servers import (
    LoopbackSmtpServer,
    SilentServer,
    make_test_certificates,
    refused_port,
)

from .common import LoopbackSendingMixin, load_greek, new_user

SALES_LOGIN = "sales-smtp"
SALES_PASSWORD = "Sales-Smtp-Pa55"
MAILBOX_PASSWORD = "Mailbox-Pa55"


class EmailAccountRoutingCase(LoopbackSendingMixin, TransactionCase):
    """Two loopback servers with an account each, and a catch-all server.

    ``account_sales`` (company A, login required) sends through
    ``smtp_sales``; ``account_support`` (shared) through ``smtp_support``;
    any other sender goes through ``smtp_default``, an ordinary server
    without a FROM filter.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.smtp_sales = cls.login_server({SALES_LOGIN: SALES_PASSWORD})
        cls.smtp_support = cls.enterClassContext(LoopbackSmtpServer())

        cls.company_a = cls.env.company
        cls.company_b = cls.env["res.company"].create({"name": "Company B"})
        cls.account_sales = cls.env["email.account"].create(
            {
                "name": "Sales",
                "username": "sales@example.com",
                "password": MAILBOX_PASSWORD,
                "sender_name": "Sales Department",
                "sender_email": "sales@example.com",
                **cls.connection_to(cls.smtp_sales),
                "smtp_login": SALES_LOGIN,
                "smtp_password": SALES_PASSWORD,
                "company_id": cls.company_a.id,
            }
        )
        cls.account_support = cls.env["email.account"].create(
            {
                "name": "Support",
                "sender_name": "Support Team",
                "sender_email": "support@example.com",
                "smtp_host": "127.0.0.1",
                "smtp_port": cls.smtp_support.port,
                "smtp_timeout": 10,
                "company_id": False,
            }
        )
        # Who queues the mail of these tests: a member of Email Accounts /
        # User in company A, so allowed to send through both accounts.
        cls.seller = new_user(
            cls.env, "routing_account_user", "email_account.group_email_account_user"
        )

    def loopback_servers(self):
        return [self.smtp_sales, self.smtp_support, self.smtp_default]

    def queue_mail(self, email_from, user=None, **values):
        """Queue a mail as ``user`` (default: the seller) would."""
        # sudo() keeps the user as the creator, who is responsible for it.
        mail_model = self.env["mail.mail"].with_user(user or self.seller).sudo()
        return mail_model.create(
            {
                "email_from": email_from,
                "email_to": "customer@example.org",
                "subject": "Quotation",
                "body_html": "<p>Here is your quotation.</p>",
                "auto_delete": False,
                **values,
            }
        )

    def post_and_send(self, record, user, **values):
        """Post a comment on ``record`` to the customer, then send its mail."""
        message = (
            record.with_user(user)
            .with_context(mail_notify_force_send=False)
            .message_post(
                body="Your order is ready.",
                partner_ids=self.customer.ids,
                message_type="comment",
                subtype_xmlid="mail.mt_comment",
                **values,
            )
        )
        mails = self.env["mail.mail"].search([("mail_message_id", "=", message.id)])
        self.assertEqual(mails.mapped("state"), ["outgoing"])
        mails.send()

    def assertOnlyReceivedBy(self, server, count=1):
        """Assert ``server`` received ``count`` messages and the others none."""
        received = {
            "sales": len(self.smtp_sales.messages),
            "support": len(self.smtp_support.messages),
            "default": len(self.smtp_default.messages),
        }
        names = {
            id(self.smtp_sales): "sales",
            id(self.smtp_support): "support",
            id(self.smtp_default): "default",
        }
        expected = dict.fromkeys(received, 0)
        expected[names[id(server)]] = count
        self.assertEqual(received, expected)


@tagged("post_install", "-at_install")
class TestEmailAccountRouting(EmailAccountRoutingCase):
    def test_queued_mail_leaves_through_the_account(self):
        mail = self.queue_mail("sales@example.com")
        mail.send()

        self.assertEqual(mail.state, "sent")
        self.assertOnlyReceivedBy(self.smtp_sales)
        received = self.smtp_sales.messages[0]
        self.assertEqual(received.auth_login, SALES_LOGIN)
        self.assertEqual(received.mail_from, "sales@example.com")
        self.assertEqual(received.rcpt_tos, ["customer@example.org"])
        sender = received.message["From"].addresses[0]
        self.assertEqual(sender.addr_spec, "sales@example.com")
        self.assertEqual(sender.display_name, "Sales Department")

    def test_sender_name_of_the_message_is_kept(self):
        self.queue_mail('"Jane Seller" <Sales@Example.com>').send()

        self.assertOnlyReceivedBy(self.smtp_sales)
        sender = self.smtp_sales.messages[0].message["From"].addresses[0]
        self.assertEqual(sender.display_name, "Jane Seller")

    def test_each_account_uses_its_own_server(self):
        self.queue_mail("sales@example.com", subject="From sales").send()
        self.queue_mail("support@example.com", subject="From support").send()

        self.assertEqual(len(self.smtp_sales.messages), 1)
        self.assertEqual(len(self.smtp_support.messages), 1)
        self.assertEqual(self.smtp_sales.messages[0].message["Subject"], "From sales")
        self.assertEqual(
            self.smtp_support.messages[0].message["Subject"], "From support"
        )
        self.assertEqual(self.smtp_support.messages[0].auth_login, None)
        self.assertFalse(self.smtp_default.messages)

    def test_one_batch_of_several_senders_is_routed_per_sender(self):
        # The queue remembers, within one run, which servers each sender may
        # use: a sender who may not use the account still goes elsewhere.
        outsider = new_user(self.env, "routing_outsider")
        allowed = self.queue_mail("sales@example.com", subject="Allowed")
        other = self.queue_mail("sales@example.com", user=outsider, subject="Other")
        (allowed | other).send()

        self.assertEqual(
            [m.message["Subject"] for m in self.smtp_sales.messages], ["Allowed"]
        )
        self.assertEqual(
            [m.message["Subject"] for m in self.smtp_default.messages], ["Other"]
        )

    def test_other_senders_do_not_use_accounts(self):
        self.queue_mail("someone@example.net").send()
        self.assertOnlyReceivedBy(self.smtp_default)

    @mute_logger("odoo.addons.base.models.ir_mail_server")
    def test_account_is_never_a_fallback(self):
        # Without a catch-all server core would take "the first server even
        # if it was configured for another domain": never an account's.
        self.default_server.active = False
        mail = self.queue_mail("someone@example.net")
        mail.send()

        self.assertEqual(mail.state, "exception")
        self.assertOnlyReceivedBy(self.smtp_sales, count=0)

    def test_archived_account_is_no_longer_used(self):
        self.account_sales.action_archive()
        self.assertFalse(self.account_sales.mail_server_id.active)

        self.queue_mail("sales@example.com").send()
        self.assertOnlyReceivedBy(self.smtp_default)

        self.account_sales.action_unarchive()
        self.queue_mail("sales@example.com").send()
        self.assertEqual(len(self.smtp_sales.messages), 1)

    def test_deleted_account_releases_its_queued_mail(self):
        server = self.account_sales.mail_server_id
        mail = self.queue_mail("sales@example.com", mail_server_id=server.id)
        self.account_sales.unlink()

        self.assertFalse(server.exists())
        self.assertFalse(mail.mail_server_id)
        mail.send()
        self.assertOnlyReceivedBy(self.smtp_default)

    def test_mail_forced_through_the_account_leaves_as_the_account(self):
        mail = self.queue_mail(
            '"Jane Seller" <jane@example.net>',
            mail_server_id=self.account_sales.mail_server_id.id,
        )
        mail.send()

        self.assertOnlyReceivedBy(self.smtp_sales)
        received = self.smtp_sales.messages[0]
        self.assertEqual(received.mail_from, "sales@example.com")
        self.assertEqual(
            received.message["From"].addresses[0].addr_spec, "sales@example.com"
        )
        self.assertEqual(
            received.message["Reply-To"].addresses[0].addr_spec, "jane@example.net"
        )

    def test_timeout_of_the_account_applies_to_sending(self):
        with SilentServer() as silent:
            self.account_support.write({"smtp_port": silent.port, "smtp_timeout": 1})
            mail = self.queue_mail("support@example.com")
            started = time.monotonic()
            mail.send()
            elapsed = time.monotonic() - started

        self.assertEqual(mail.state, "exception")
        self.assertIn("Support", mail.failure_reason)
        self.assertIn("greeting", mail.failure_reason)
        # Core's connection would wait 60 seconds.
        self.assertLess(elapsed, 10)

    def test_wrong_password_is_reported_on_the_mail(self):
        self.account_sales.smtp_password = "not-the-password"
        mail = self.queue_mail("sales@example.com")
        mail.send()

        self.assertEqual(mail.state, "exception")
        self.assertIn("Logging in", mail.failure_reason)
        self.assertFalse(self.smtp_sales.messages)

    def test_failure_reason_is_in_the_language_of_the_sender(self):
        load_greek(self.env)
        self.account_support.smtp_port = refused_port()
        mail = self.queue_mail("support@example.com")
        mail.with_context(lang="el_GR").send()

        self.assertEqual(mail.state, "exception")
        self.assertIn("Σύνδεση με τον διακομιστή", mail.failure_reason)
        self.assertIn("Κανείς δεν δέχτηκε τη σύνδεση", mail.failure_reason)

    def test_tls_certificate_is_verified_when_sending(self):
        # The engine verifies the server's certificate against the system
        # store: a certificate from an unknown authority is refused.
        with tempfile.TemporaryDirectory() as directory:
            certs = make_test_certificates(directory)
            with LoopbackSmtpServer(tls="starttls", certs=certs) as tls_server:
                self.account_support.write(
                    {"smtp_port": tls_server.port, "smtp_encryption": "starttls"}
                )
                mail = self.queue_mail("support@example.com")
                mail.send()

        self.assertEqual(mail.state, "exception")
        self.assertIn("TLS", mail.failure_reason)
        self.assertFalse(tls_server.messages)

    def test_chatter_post_from_the_account_address(self):
        seller = new_user(
            self.env,
            "routing_seller",
            "base.group_partner_manager,email_account.group_email_account_user",
            name="Jane Seller",
            email="sales@example.com",
        )
        self.post_and_send(self.customer, seller)

        self.assertOnlyReceivedBy(self.smtp_sales)
        received = self.smtp_sales.messages[0]
        self.assertEqual(received.auth_login, SALES_LOGIN)
        self.assertEqual(received.rcpt_tos, ["customer@example.org"])
        self.assertEqual(
            received.message["From"].addresses[0].display_name, "Jane Seller"
        )

    def test_crm_lead_post_from_the_account_address(self):
        if "crm.lead" not in self.env:
            self.skipTest("CRM is not installed")
        seller = new_user(
            self.env,
            "routing_crm_seller",
            "sales_team.group_sale_salesman,email_account.group_email_account_user",
            email="sales@example.com",
        )
        lead = self.env["crm.lead"].create(
            {"name": "Big deal", "partner_id": self.customer.id, "user_id": seller.id}
        )
        self.post_and_send(lead, seller)

        self.assertOnlyReceivedBy(self.smtp_sales)


@tagged("post_install", "-at_install")
class TestEmailAccountMailServer(EmailAccountRoutingCase):
    def test_server_follows_the_account(self):
        server = self.account_sales.mail_server_id
        self.assertRecordValues(
            server,
            [
                {
                    "name": "Sales",
                    "from_filter": "sales@example.com",
                    "smtp_host": "127.0.0.1",
                    "smtp_port": self.smtp_sales.port,
                    "smtp_encryption": "starttls_strict",
                    "smtp_user": SALES_LOGIN,
                    "email_account_id": self.account_sales.id,
                    "active": True,
                }
            ],
        )
        self.account_sales.write(
            {
                "name": "Sales EU",
                "sender_email": "Sales-EU@Example.com",
                "smtp_encryption": "ssl",
                "smtp_port": 465,
                "smtp_login": False,
                "company_id": self.company_b.id,
            }
        )
        self.assertRecordValues(
            server,
            [
                {
                    "name": "Sales EU",
                    "from_filter": "sales-eu@example.com",
                    "smtp_encryption": "ssl_strict",
                    "smtp_port": 465,
                    "smtp_user": "sales@example.com",
                }
            ],
        )
        self.account_sales.smtp_auth_required = False
        self.assertFalse(server.smtp_user)
        self.account_sales.smtp_encryption = "none"
        self.assertEqual(server.smtp_encryption, "none")

    def test_copy_makes_its_own_server(self):
        copy = self.account_sales.copy()
        self.assertTrue(copy.mail_server_id)
        self.assertNotEqual(copy.mail_server_id, self.account_sales.mail_server_id)
        self.assertEqual(copy.mail_server_id.email_account_id, copy)

    def test_no_clear_password_in_the_mail_server_table(self):
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT id FROM ir_mail_server WHERE email_account_id IS NOT NULL "
            "AND COALESCE(smtp_pass, '') != ''"
        )
        self.assertFalse(self.env.cr.fetchall())
        for secret in (SALES_PASSWORD, MAILBOX_PASSWORD):
            self.env.cr.execute(
                "SELECT id FROM ir_mail_server AS server WHERE server::text LIKE %s",
                [f"%{secret}%"],
            )
            self.assertFalse(self.env.cr.fetchall(), "a password is stored in clear")
        # Not even on purpose, whatever the context says.
        with self.assertRaises(UserError):
            self.account_sales.mail_server_id.with_context(
                email_account_sync=True
            ).smtp_pass = SALES_PASSWORD

    def test_managed_server_refuses_direct_changes(self):
        server = self.account_sales.mail_server_id
        with self.assertRaisesRegex(UserError, "Sales"):
            server.smtp_host = "smtp.example.com"
        with self.assertRaises(UserError):
            server.action_archive()
        with self.assertRaises(UserError):
            server.with_context(email_account_sync=True).smtp_port = 2525
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError):
            self.env["ir.mail_server"].create(
                {
                    **self.account_support._mail_server_values(),
                    "email_account_id": self.account_support.id,
                }
            )
        # What the account does not decide stays free.
        server.write({"sequence": 3, "max_email_size": 5})
        self.assertEqual(server.sequence, 3)
        self.assertEqual(server.smtp_host, "127.0.0.1")

    def test_deleted_server_comes_back_when_the_account_is_saved(self):
        # Deleting servers is what an administrator (and core's own tests)
        # may do; the account then stays, and makes a new one when saved.
        self.account_sales.mail_server_id.unlink()
        self.assertFalse(self.account_sales.mail_server_id)
        self.account_sales.sender_name = "Sales Team"
        server = self.account_sales.mail_server_id
        self.assertEqual(server.email_account_id, self.account_sales)
        self.queue_mail("sales@example.com").send()
        self.assertOnlyReceivedBy(self.smtp_sales)

    def test_server_connection_test_uses_the_account(self):
        # Core's "Test Connection" button of the server logs in with the
        # account's password although the server stores none.
        action = self.account_sales.mail_server_id.test_smtp_connection()
        self.assertEqual(action["params"]["type"], "success")


@tagged("post_install", "-at_install")
class TestEmailAccountCompanies(EmailAccountRoutingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin_b = new_user(
            cls.env, "routing_admin_b", "base.group_system", company=cls.company_b
        )
        cls.user_b = new_user(
            cls.env,
            "routing_user_b",
            "base.group_partner_manager,email_account.group_email_account_user",
            company=cls.company_b,
            email="user_b@example.net",
        )

    def test_user_of_another_company_does_not_see_the_account(self):
        accounts = self.env["email.account"].with_user(self.admin_b).search([])
        self.assertNotIn(self.account_sales, accounts)
        self.assertIn(self.account_support, accounts)

        servers = self.env["ir.mail_server"].with_user(self.admin_b).search([])
        self.assertNotIn(self.account_sales.mail_server_id, servers)
        self.assertIn(self.account_support.mail_server_id, servers)
        self.assertIn(self.default_server, servers)

    def test_user_of_another_company_does_not_send_through_the_account(self):
        self.post_and_send(self.customer, self.user_b, email_from="sales@example.com")

        self.assertOnlyReceivedBy(self.smtp_default)

    def test_user_of_another_company_cannot_force_the_account(self):
        with self.assertRaises(ValidationError):
            self.env["mail.mail"].with_user(self.admin_b).create(
                {
                    "email_from": "sales@example.com",
                    "email_to": "customer@example.org",
                    "mail_server_id": self.account_sales.mail_server_id.id,
                }
            )

    def test_shared_account_serves_every_company(self):
        self.post_and_send(self.customer, self.user_b, email_from="support@example.com")

        self.assertOnlyReceivedBy(self.smtp_support)


@tagged("post_install", "-at_install")
class TestEmailAccountSendingApi(EmailAccountRoutingCase):
    def test_find_account(self):
        Account = self.env["email.account"]
        self.assertEqual(
            Account._find_account('"Someone" <SALES@example.com>'),
            self.account_sales,
        )
        self.assertFalse(Account._find_account("nobody@example.com"))
        self.assertFalse(Account._find_account("not an address"))
        self.assertFalse(
            Account._find_account("sales@example.com", company=self.company_b)
        )
        self.assertEqual(
            Account._find_account("support@example.com", company=self.company_b),
            self.account_support,
        )
        user_b = new_user(
            self.env, "api_user_b", company=self.company_b, email="sales@example.com"
        )
        self.assertFalse(Account._find_account(user=user_b))
        user_a = new_user(
            self.env,
            "api_user_a",
            "email_account.group_email_account_user",
            email="Sales@Example.com",
        )
        self.assertEqual(Account._find_account(user=user_a), self.account_sales)

    def test_find_account_prefers_the_company_account(self):
        local = self.env["email.account"].create(
            {
                "name": "Support A",
                "sender_email": "support@example.com",
                "smtp_host": "127.0.0.1",
                "company_id": self.company_a.id,
            }
        )
        found = self.env["email.account"]._find_account(
            "support@example.com", company=self.company_a
        )
        self.assertEqual(found, local)

    def test_formatted_sender(self):
        self.assertEqual(
            self.account_sales._get_formatted_sender(),
            '"Sales Department" <sales@example.com>',
        )
        self.account_sales.sender_name = False
        self.assertEqual(
            self.account_sales._get_formatted_sender(), "sales@example.com"
        )

    def test_send_prepared_message(self):
        message = EmailMessage()
        message["To"] = "customer@example.org"
        message["Subject"] = "Prepared elsewhere"
        message.set_content("Hello")

        message_id = self.account_sales._send_email_message(message)

        self.assertOnlyReceivedBy(self.smtp_sales)
        received = self.smtp_sales.messages[0]
        self.assertEqual(received.message["Message-Id"], message_id)
        self.assertEqual(received.auth_login, SALES_LOGIN)
        sender = received.message["From"].addresses[0]
        self.assertEqual(
            (sender.display_name, sender.addr_spec),
            ("Sales Department", "sales@example.com"),
        )

    def test_send_prepared_message_through_archived_account(self):
        self.account_sales.action_archive()
        message = EmailMessage()
        message["To"] = "customer@example.org"
        message.set_content("Hello")
        with self.assertRaises(UserError):
            self.account_sales._send_email_message(message)
        self.assertFalse(self.smtp_sales.messages)


@tagged("post_install", "-at_install")
class TestEmailAccountUninstall(EmailAccountRoutingCase):
    def test_uninstall_hook_removes_servers_and_releases_mail(self):
        servers = (self.account_sales | self.account_support).mail_server_id
        mail = self.queue_mail("sales@example.com", mail_server_id=servers[0].id)

        uninstall_hook(self.env)

        self.assertFalse(servers.exists())
        self.assertTrue(self.default_server.exists())
        self.assertEqual(mail.state, "outgoing")
        self.assertFalse(mail.mail_server_id)
