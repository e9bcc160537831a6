"""Shared fixtures of the Odoo tests: companies, users of each group, accounts."""

from odoo.tests import TransactionCase, new_test_user

from odoo.addons.base.tests.common import DISABLED_MAIL_CONTEXT


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
