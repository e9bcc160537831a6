"""Mass mailings sent through an e-mail account.

Runs only when mass_mailing is installed: the addon does not depend on it.
"""

import unittest

from odoo import SUPERUSER_ID
from odoo.exceptions import ValidationError
from odoo.tests import Form, tagged

from .common import new_user
from .test_email_account_routing import SALES_LOGIN, EmailAccountRoutingCase


@tagged("post_install", "-at_install")
class TestEmailAccountMassMailing(EmailAccountRoutingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if "mailing.mailing" not in cls.env:
            raise unittest.SkipTest("mass_mailing is not installed")
        # The setting that shows the mail server on mailings.
        cls.env["ir.config_parameter"].set_param(
            "mass_mailing.outgoing_mail_server", True
        )
        marketer = (
            "mass_mailing.group_mass_mailing_user,"
            "email_account.group_email_account_user"
        )
        cls.marketer_a = new_user(
            cls.env, "routing_marketer_a", marketer, email="marketer@example.net"
        )
        cls.marketer_b = new_user(
            cls.env,
            "routing_marketer_b",
            marketer,
            company=cls.company_b,
            email="marketer-b@example.net",
        )
        cls.mailing_list = cls.env["mailing.list"].create(
            {
                "name": "Newsletter",
                "contact_ids": [
                    (0, 0, {"name": "Reader One", "email": "one@example.org"}),
                    (0, 0, {"name": "Reader Two", "email": "two@example.org"}),
                ],
            }
        )
        cls.list_model = cls.env["ir.model"]._get("mailing.list")

    def test_mailing_goes_out_through_the_chosen_account(self):
        server = self.account_sales.mail_server_id
        with Form(self.env["mailing.mailing"].with_user(self.marketer_a)) as form:
            form.subject = "Spring offers"
            form.mailing_model_id = self.list_model
            form.contact_list_ids.add(self.mailing_list)
            form.body_arch = "<p>Our spring offers.</p>"
            self.assertTrue(form.mail_server_available)
        mailing = form.record
        # The server field sits in the form's developer-mode group, which
        # Form cannot fill; the browser's editor makes the inline body.
        mailing.write({"mail_server_id": server.id, "body_html": mailing.body_arch})
        self.assertEqual(mailing.mail_server_id.display_name, "Sales")

        mailing.action_send_mail()
        self.env["mail.mail"].search(
            [("mailing_id", "=", mailing.id), ("state", "=", "outgoing")]
        ).send()

        self.assertOnlyReceivedBy(self.smtp_sales, count=2)
        self.assertEqual(
            sorted(rcpt for msg in self.smtp_sales.messages for rcpt in msg.rcpt_tos),
            ["one@example.org", "two@example.org"],
        )
        for received in self.smtp_sales.messages:
            self.assertEqual(received.auth_login, SALES_LOGIN)
            self.assertEqual(received.mail_from, "sales@example.com")
            sender = received.message["From"].addresses[0]
            self.assertEqual(
                (sender.display_name, sender.addr_spec),
                ("Sales Department", "sales@example.com"),
            )

    def test_marketing_user_picks_the_account_by_its_name(self):
        Server = self.env["ir.mail_server"].with_user(self.marketer_a)
        found = Server.browse(
            [server_id for server_id, _name in Server.name_search("Sales")]
        )
        self.assertEqual(found, self.account_sales.mail_server_id)
        self.assertEqual(found.display_name, "Sales")

    def test_other_company_cannot_pick_or_use_the_account(self):
        Server = self.env["ir.mail_server"].with_user(self.marketer_b)
        self.assertFalse(Server.name_search("Sales"))
        self.assertIn(self.account_support.mail_server_id, Server.search([]))

        mailing = (
            self.env["mailing.mailing"]
            .with_user(self.marketer_b)
            .create(
                {
                    "subject": "Borrowed server",
                    "mailing_model_id": self.list_model.id,
                    "contact_list_ids": [(6, 0, self.mailing_list.ids)],
                    "body_html": "<p>Hello</p>",
                    "mail_server_id": self.account_sales.mail_server_id.id,
                }
            )
        )
        with self.assertRaises(ValidationError):
            mailing.action_send_mail()
        # Nor when the mailing queue sends it on the marketer's behalf.
        with self.assertRaises(ValidationError):
            mailing.with_user(SUPERUSER_ID).action_send_mail()
        self.assertFalse(self.smtp_sales.messages)
