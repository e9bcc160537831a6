"""Shared fixtures of the Odoo tests: users, loopback servers, RPC, accounts."""

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


def new_user(env, login, groups="base.group_user", company=None, **values):
    """A test user who logs in with their login; of ``company`` alone if given."""
    if company:
        values.update(company_id=company.id, company_ids=[(6, 0, company.ids)])
    return new_test_user(env, login=login, groups=groups, **values)


def trust_test_certificates(case):
    """Certificates of a test authority that Odoo trusts while ``case`` runs."""
    certs = make_test_certificates(
        case.enterClassContext(tempfile.TemporaryDirectory())
    )
    case.startClassPatcher(
        patch.dict(config.options, {"email_account_ca_file": str(certs.ca_cert)})
    )
    return certs


def load_greek(env):
    """Activate Greek with the addon's own catalogue over any loaded before."""
    env["res.lang"]._activate_lang("el_GR")
    env["ir.module.module"]._load_module_terms(
        ["email_account"], ["el_GR"], overwrite=True
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
        cls.certs = trust_test_certificates(cls)
        cls.startClassPatcher(
            patch.dict(
                config.options,
                {"smtp_server": "127.0.0.1", "smtp_port": refused_port()},
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

    @staticmethod
    def connection_to(server):
        """An account's settings for logging in to ``server`` of ``login_server``."""
        return {
            "smtp_host": "127.0.0.1",
            "smtp_port": server.port,
            "smtp_encryption": "starttls",
            "smtp_timeout": 10,
            "smtp_auth_required": True,
        }

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

    def run_queue(self, mails):
        """Send as the mail queue's cron does: as the superuser."""
        self.assertTrue(mails)
        mails.sudo().send()


class JsonRpcMixin:
    """An ``HttpCase`` that acts as the web client of a logged-in user.

    Users made with ``new_user`` log in with ``log_in``; ``call`` then
    calls a model's method over JSON-RPC, as the web client does.
    """

    def log_in(self, user):
        self.authenticate(user.login, user.login)

    def call(self, model, method, *args, **kwargs):
        return self.make_jsonrpc_request(
            f"/web/dataset/call_kw/{model}/{method}",
            {"model": model, "method": method, "args": list(args), "kwargs": kwargs},
        )

    def post_to_customer(self, model, record_id, **values):
        """Post on a record to the ``customer`` of ``LoopbackSendingMixin``.

        Returns the mails the post queued.
        """
        message_id = self.call(
            model,
            "message_post",
            [record_id],
            body="Your order is ready.",
            partner_ids=self.customer.ids,
            message_type="comment",
            subtype_xmlid="mail.mt_comment",
            context={"mail_notify_force_send": False},
            **values,
        )
        return self.env["mail.mail"].search([("mail_message_id", "=", message_id)])


class EmailAccountCase(TransactionCase):
    """Two companies, a user of each of our groups, and one account."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context=dict(cls.env.context, **DISABLED_MAIL_CONTEXT))
        cls.company_a = cls.env.company
        cls.company_b = cls.env["res.company"].create({"name": "Company B"})
        both = [cls.company_a.id, cls.company_b.id]
        cls.manager = new_user(
            cls.env,
            "ea_manager",
            "email_account.group_email_account_manager",
            company_ids=[(6, 0, both)],
            company_id=cls.company_a.id,
        )
        cls.user = new_user(
            cls.env, "ea_user", "email_account.group_email_account_user"
        )
        cls.user_b = new_user(
            cls.env,
            "ea_user_b",
            "email_account.group_email_account_user",
            company=cls.company_b,
        )
        cls.internal = new_user(cls.env, "ea_internal")
        cls.portal = new_user(cls.env, "ea_portal", "base.group_portal")
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
