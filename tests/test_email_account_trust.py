"""Attacks on the accounts' promise, performed over real RPC as the attacker.

A stored password only ever goes to the server, port, security and login it
was given for; only the people an account allows send through it. Each test
logs in as the attacking user, does over JSON-RPC what the web client or a
script could do, lets Odoo's queue send as its cron would, and looks at what
the loopback SMTP servers received.
"""

import contextlib
import unittest

from odoo.exceptions import ValidationError
from odoo.tests import HttpCase, tagged
from odoo.tests.common import JsonRpcException
from odoo.tools import mute_logger

from odoo.addons.email_account.smtp_engine.tests.servers import (
    LoopbackSmtpServer,
)

from .common import JsonRpcMixin, LoopbackSendingMixin, new_user

LOGIN = "sales@example.com"
PASSWORD = "Sales-Pa55-trust"


class EmailAccountTrustCase(JsonRpcMixin, LoopbackSendingMixin, HttpCase):
    """An account of company A with a password, its server, a catch-all."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.smtp_sales = cls.login_server({LOGIN: PASSWORD})
        cls.smtp_attacker = cls.login_server({LOGIN: "anything"})
        cls.company_a = cls.env.company
        cls.company_b = cls.env["res.company"].create({"name": "Company B"})
        partner_manager = "base.group_partner_manager"
        account_user = f"{partner_manager},email_account.group_email_account_user"
        cls.manager = new_user(
            cls.env, "trust_manager", "email_account.group_email_account_manager"
        )
        cls.account_user = new_user(cls.env, "trust_account_user", account_user)
        cls.internal = new_user(
            cls.env,
            "trust_internal",
            f"base.group_user,{partner_manager}",
            email="sales@example.com",
        )
        cls.user_b = new_user(
            cls.env, "trust_user_b", account_user, company=cls.company_b
        )
        cls.account = cls.env["email.account"].create(
            {
                "name": "Sales",
                "username": LOGIN,
                "password": PASSWORD,
                "sender_name": "Sales Department",
                "sender_email": "sales@example.com",
                **cls.connection_to(cls.smtp_sales),
                "company_id": cls.company_a.id,
            }
        )

    def loopback_servers(self):
        return [self.smtp_sales, self.smtp_attacker, self.smtp_default]

    def post_as_logged_user(self, email_from):
        """Post on the customer to the customer over RPC, as the web client."""
        return self.post_to_customer(
            "res.partner", self.customer.id, email_from=email_from
        )

    def received(self):
        return {
            "sales": len(self.smtp_sales.messages),
            "attacker": len(self.smtp_attacker.messages),
            "default": len(self.smtp_default.messages),
        }


@tagged("post_install", "-at_install")
class TestEmailAccountTrust(EmailAccountTrustCase):
    # 1. Credentials are bound to their server

    def test_manager_cannot_send_the_password_elsewhere(self):
        self.log_in(self.manager)
        moves = {
            "host and port": {"smtp_host": "localhost", "smtp_port": 0},
            "port": {"smtp_port": 0},
            "login": {"smtp_login": LOGIN.upper()},
            "user name": {"username": "SALES@example.com"},
        }
        for what, values in moves.items():
            with self.subTest(moved=what):
                self.account.write(
                    {
                        "smtp_host": "127.0.0.1",
                        "smtp_port": self.smtp_sales.port,
                        "smtp_login": False,
                        "username": LOGIN,
                        "password": PASSWORD,
                    }
                )
                if values.get("smtp_port") == 0:
                    values = {**values, "smtp_port": self.smtp_attacker.port}
                self.call(
                    "email.account",
                    "web_save",
                    [self.account.id],
                    values,
                    specification={"password_set": {}},
                )
                self.call(
                    "email.account", "action_send_test_message", [self.account.id]
                )

                self.assertFalse(self.account.password_set)
                self.assertEqual(self.account.test_state, "failed")
                for server in (self.smtp_attacker, self.smtp_sales):
                    self.assertFalse(
                        [c for c in server.commands if c.upper().startswith("AUTH")]
                    )

    def test_new_password_in_the_same_save_is_kept(self):
        self.log_in(self.manager)
        self.call(
            "email.account",
            "web_save",
            [self.account.id],
            {"smtp_port": self.smtp_attacker.port, "password": "anything"},
            specification={},
        )
        self.assertTrue(self.account.password_set)
        self.call("email.account", "action_send_test_message", [self.account.id])
        self.assertEqual(self.account.test_state, "ok")
        self.assertEqual(len(self.smtp_attacker.messages), 1)

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_password_never_travels_without_encryption(self):
        # Even with the password given again in the same save, an account
        # whose security is None refuses to log in, before connecting.
        plain = self.enterContext(LoopbackSmtpServer(auth={LOGIN: PASSWORD}))
        self.log_in(self.manager)
        self.call(
            "email.account",
            "web_save",
            [self.account.id],
            {"smtp_port": plain.port, "smtp_encryption": "none", "password": PASSWORD},
            specification={},
        )
        self.call("email.account", "action_send_test_message", [self.account.id])
        self.assertEqual(self.account.test_state, "failed")
        self.assertIn("STARTTLS", self.account.test_message)
        self.log_in(self.account_user)
        mails = self.post_as_logged_user("sales@example.com")
        self.run_queue(mails)
        self.assertEqual(mails.state, "exception")
        self.assertFalse(plain.connections)

    def test_dropped_password_is_recorded_in_the_chatter(self):
        self.log_in(self.manager)
        self.call(
            "email.account",
            "web_save",
            [self.account.id],
            {"smtp_host": "localhost"},
            specification={},
        )
        self.assertIn(
            "The stored password was removed",
            "".join(self.account.message_ids.mapped("body")),
        )

    def test_manager_removes_a_stored_password(self):
        self.log_in(self.manager)
        self.call("email.account", "action_remove_password", [self.account.id])
        read = self.call(
            "email.account",
            "web_read",
            [self.account.id],
            specification={"password": {}, "password_set": {}},
        )
        self.assertEqual(
            read[0], {"id": self.account.id, "password": False, "password_set": False}
        )
        self.assertFalse(self.account.sudo().password_token)

    # 2. Who may send through an account

    def test_account_user_sends_through_the_account(self):
        self.log_in(self.account_user)
        self.run_queue(self.post_as_logged_user("sales@example.com"))
        self.assertEqual(self.received(), {"sales": 1, "attacker": 0, "default": 0})

    def test_internal_user_without_the_group_uses_normal_routing(self):
        self.log_in(self.internal)
        self.run_queue(self.post_as_logged_user("sales@example.com"))
        self.assertEqual(self.received(), {"sales": 0, "attacker": 0, "default": 1})

        self.account.allowed_senders = "internal_users"
        self.run_queue(self.post_as_logged_user("sales@example.com"))
        self.assertEqual(self.received(), {"sales": 1, "attacker": 0, "default": 1})

    @mute_logger(
        "odoo.addons.mail.models.mail_mail", "odoo.addons.base.models.ir_mail_server"
    )
    def test_other_company_never_sends_through_the_account(self):
        # With no other server at all, the queue looks for a server a second
        # time when it connects: that lookup must not find the account.
        self.default_server.active = False
        self.log_in(self.user_b)
        mails = self.post_as_logged_user("sales@example.com")
        self.run_queue(mails)
        self.assertEqual(self.received(), {"sales": 0, "attacker": 0, "default": 0})
        self.assertEqual(mails.state, "exception")
        self.assertFalse(self.smtp_sales.connections)

    def test_user_cannot_force_the_account_server_on_a_mail(self):
        self.log_in(self.internal)
        server = self.account.sudo().mail_server_id
        with mute_logger("odoo.http"), self.assertRaises(JsonRpcException):
            self.call(
                "res.partner",
                "message_post",
                [self.customer.id],
                body="Forced",
                partner_ids=self.customer.ids,
                message_type="comment",
                subtype_xmlid="mail.mt_comment",
                mail_server_id=server.id,
            )
        self.assertFalse(self.smtp_sales.connections)

    def test_system_mail_uses_the_account_only_when_allowed(self):
        def system_mail():
            return self.env["mail.mail"].create(
                {
                    "email_from": "sales@example.com",
                    "email_to": "customer@example.org",
                    "subject": "Digest",
                    "body_html": "<p>Your digest</p>",
                }
            )

        self.run_queue(system_mail())
        self.assertEqual(self.received(), {"sales": 0, "attacker": 0, "default": 1})
        self.account.allow_system_mail = True
        self.run_queue(system_mail())
        self.assertEqual(self.received(), {"sales": 1, "attacker": 0, "default": 1})

    def test_incoming_mail_with_a_forged_from_is_not_relayed(self):
        self.account.allow_system_mail = True
        self.customer.message_subscribe(partner_ids=self.customer.ids)
        self.env["mail.thread"].message_process(
            "res.partner",
            (
                "From: Sales Department <sales@example.com>\r\n"
                "To: catchall@example.com\r\n"
                "Subject: Forged\r\n"
                "Message-ID: <forged-1@example.com>\r\n"
                "\r\n"
                "Pretending to be the account.\r\n"
            ),
            thread_id=self.customer.id,
        )
        mails = self.env["mail.mail"].search([("subject", "=", "Forged")])
        if mails:
            self.run_queue(mails)
        self.assertFalse(self.smtp_sales.messages)


@tagged("post_install", "-at_install")
class TestEmailAccountTrustMassMailing(EmailAccountTrustCase):
    """Marketers can read outgoing mail servers: the ones who could try."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if "mailing.mailing" not in cls.env:
            raise unittest.SkipTest("mass_mailing is not installed")
        marketer = "mass_mailing.group_mass_mailing_user"
        account_user = f"{marketer},email_account.group_email_account_user"
        cls.marketer_a = new_user(cls.env, "trust_marketer_a", account_user)
        cls.marketer_b = new_user(
            cls.env, "trust_marketer_b", account_user, company=cls.company_b
        )
        # Of the account's company, but not allowed to use the account.
        cls.marketer_plain = new_user(cls.env, "trust_marketer_plain", marketer)
        cls.mailing_list = cls.env["mailing.list"].create(
            {
                "name": "Newsletter",
                "contact_ids": [(0, 0, {"name": "Reader", "email": "one@example.org"})],
            }
        )

    @mute_logger("odoo.http")
    def test_connection_test_of_the_account_server_over_rpc(self):
        server = self.account.sudo().mail_server_id
        self.log_in(self.marketer_plain)
        with self.assertRaises(JsonRpcException) as caught:
            self.call("ir.mail_server", "test_smtp_connection", [server.id])
        self.assertNotIn("Sales", str(caught.exception))
        self.assertFalse(self.smtp_sales.connections)
        self.assertNotIn(
            server.id,
            [found[0] for found in self.call("ir.mail_server", "name_search", "Sales")],
        )

    @mute_logger("odoo.http", "odoo.addons.mass_mailing.models.mailing")
    def test_mailing_naming_an_allowed_responsible_does_not_use_the_account(self):
        self.log_in(self.marketer_b)
        mailing_id = self.call(
            "mailing.mailing",
            "create",
            {
                "subject": "Borrowed account",
                "mailing_model_id": self.env["ir.model"]._get_id("mailing.list"),
                "contact_list_ids": [(6, 0, self.mailing_list.ids)],
                "body_html": "<p>Hello</p>",
                "user_id": self.marketer_a.id,
                "mail_server_id": self.account.sudo().mail_server_id.id,
            },
        )
        with self.assertRaises(JsonRpcException):
            self.call("mailing.mailing", "action_send_mail", [mailing_id])
        self.call("mailing.mailing", "action_put_in_queue", [mailing_id])
        # What the mailing queue's cron does for it, as the superuser.
        with contextlib.suppress(ValidationError):
            self.env["mailing.mailing"].browse(mailing_id)._action_send_mail()
        mails = self.env["mail.mail"].search([("subject", "=", "Borrowed account")])
        mails.sudo().send()
        self.assertEqual(set(mails.mapped("state")), {"exception"})
        self.assertFalse(self.smtp_sales.messages)
        self.assertFalse(self.smtp_sales.connections)
