"""Shared fixtures of the Odoo tests: companies, users of each group, accounts."""

import json
import tempfile
from unittest.mock import patch

from odoo.tests import TransactionCase, new_test_user
from odoo.tools import config

from odoo.addons.base.models.ir_mail_server import IrMail_Server
from odoo.addons.base.tests.common import DISABLED_MAIL_CONTEXT
from odoo.addons.email_account.smtp_engine.tests.servers import (
    LoopbackSmtpServer,
    make_test_certificates,
    refused_port,
)


class LoopbackSendingMixin:
    """Odoo sends for real, to loopback servers, and nowhere else.

    ``smtp_default`` is a catch-all outgoing mail server (no FROM filter);
    mail that no server takes fails instead of leaving, whatever this
    machine's configuration says. Servers that take a login speak STARTTLS
    with certificates of a test authority that Odoo is told to trust (see
    ``login_server``): accounts never send a password in clear text.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context=dict(cls.env.context, **DISABLED_MAIL_CONTEXT))
        cls.certs = make_test_certificates(
            cls.enterClassContext(tempfile.TemporaryDirectory())
        )
        cls.startClassPatcher(
            patch.dict(
                config.options,
                {
                    "smtp_server": "127.0.0.1",
                    "smtp_port": refused_port(),
                    "email_account_ca_file": str(cls.certs.ca_cert),
                },
            )
        )
        cls.smtp_default = cls.enterClassContext(LoopbackSmtpServer())
        cls.default_server = cls.env["ir.mail_server"].create(
            {
                "name": "Catch-all",
                "smtp_host": "127.0.0.1",
                "smtp_port": cls.smtp_default.port,
                "sequence": 20,
            }
        )
        cls.customer = cls.env["res.partner"].create(
            {"name": "Customer", "email": "customer@example.org"}
        )

    @classmethod
    def login_server(cls, auth):
        """A STARTTLS server for the class that accepts the logins ``auth``."""
        return cls.enterClassContext(
            LoopbackSmtpServer(tls="starttls", certs=cls.certs, auth=auth)
        )

    def setUp(self):
        super().setUp()
        # Core skips all sending in tests; this is the switch core's own
        # SMTP tests turn off.
        patcher = patch.object(IrMail_Server, "_disable_send", return_value=False)
        patcher.start()
        self.addCleanup(patcher.stop)
        for server in self.loopback_servers():
            server.messages.clear()
            server.commands.clear()
            server.connections = 0

    def loopback_servers(self):
        return [self.smtp_default]


class EmailAccountCase(TransactionCase):
    """Two companies, a user of each of our groups, and one account."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context=dict(cls.env.context, **DISABLED_MAIL_CONTEXT))
        cls.company_a = cls.env.company
        cls.company_b = cls.env["res.company"].create({"name": "Company B"})
        both = [cls.company_a.id, cls.company_b.id]
        cls.manager = new_test_user(
            cls.env,
            login="ea_manager",
            groups="email_account.group_email_account_manager",
            company_ids=[(6, 0, both)],
            company_id=cls.company_a.id,
        )
        cls.user = new_test_user(
            cls.env,
            login="ea_user",
            groups="email_account.group_email_account_user",
        )
        cls.user_b = new_test_user(
            cls.env,
            login="ea_user_b",
            groups="email_account.group_email_account_user",
            company_ids=[(6, 0, [cls.company_b.id])],
            company_id=cls.company_b.id,
        )
        cls.internal = new_test_user(
            cls.env, login="ea_internal", groups="base.group_user"
        )
        cls.portal = new_test_user(
            cls.env, login="ea_portal", groups="base.group_portal"
        )
        cls.account = cls.env["email.account"].create(cls.account_values())

    @classmethod
    def account_values(cls, **overrides):
        values = {
            "name": "Sales",
            "username": "sales@example.com",
            "password": "s3cret-Pa55",
            "sender_name": "Sales Department",
            "sender_email": "sales@example.com",
            "smtp_host": "127.0.0.1",
        }
        values.update(overrides)
        return values

    def simple_notifications(self, user):
        """The simple notifications sent to ``user`` so far, oldest first."""
        self.env.cr.precommit.run()
        channel = [self.env.cr.dbname, "res.partner", user.partner_id.id]
        found = []
        for notification in self.env["bus.bus"].sudo().search([], order="id"):
            message = json.loads(notification.message)
            if (
                json.loads(notification.channel) == channel
                and message["type"] == "simple_notification"
            ):
                found.append(message["payload"])
        return found
