"""Who may see, use, edit and test an account, and who may see secrets."""

from odoo.exceptions import AccessError
from odoo.tests import Form, tagged
from odoo.tools import mute_logger

from .common import EmailAccountCase


@tagged("post_install", "-at_install")
class TestEmailAccountSecurity(EmailAccountCase):
    def test_portal_gets_nothing_and_internal_users_only_their_own(self):
        with self.assertRaises(AccessError):
            self.account.with_user(self.portal).read(["name"])
        with self.assertRaises(AccessError):
            self.env["email.account"].with_user(self.portal).search([])
        # An internal user has only their own personal account, if any.
        with self.assertRaises(AccessError):
            self.account.with_user(self.internal).read(["name"])
        self.assertFalse(self.env["email.account"].with_user(self.internal).search([]))

    def test_user_sees_accounts_without_secrets(self):
        account = self.account.with_user(self.user)
        self.assertEqual(account.read(["name", "sender_email"])[0]["name"], "Sales")
        self.assertIn("sender_email", account.fields_get())
        # Passwords are write-only for everybody: they read back as empty.
        self.assertEqual(
            account.read(["password", "smtp_password"])[0],
            {"id": account.id, "password": False, "smtp_password": False},
        )
        for field_name in ("test_transcript", "password_token"):
            self.assertNotIn(field_name, account.fields_get())
            with self.subTest(field=field_name), self.assertRaises(AccessError):
                account.read([field_name])

    def test_user_cannot_edit_delete_or_check_a_shared_account(self):
        account = self.account.with_user(self.user)
        with self.assertRaises(AccessError):
            account.write({"name": "Mine"})
        with self.assertRaises(AccessError):
            account.unlink()
        with self.assertRaises(AccessError):
            account.action_send_test_message()
        # What a user creates is their own personal account, never another's.
        own = (
            self.env["email.account"].with_user(self.user).create(self.account_values())
        )
        self.assertEqual(own.owner_user_id, self.user)
        with self.assertRaises(AccessError):
            self.env["email.account"].with_user(self.user).create(
                self.account_values(owner_user_id=self.manager.id)
            )

    def test_shared_account_form_is_read_only_for_its_users(self):
        form = Form(self.account.with_user(self.user))
        with self.assertRaisesRegex(AssertionError, "readonly"):
            form.name = "Mine"
        # A new account of their own, and the manager's form, stay editable.
        form = Form(self.env["email.account"].with_user(self.user))
        form.name = "Mine"
        with Form(self.account.with_user(self.manager)) as form:
            form.name = "Sales Team"
        self.assertEqual(self.account.name, "Sales Team")

    def test_manager_manages_but_never_reads_a_password_back(self):
        Account = self.env["email.account"].with_user(self.manager)
        account = Account.create(self.account_values(name="Support"))
        account.write({"smtp_port": 587, "password": "n3w-Pa55"})
        self.assertEqual(account.read(["password"])[0]["password"], False)
        self.assertTrue(account.password_set)
        # The encrypted form is not for clients either.
        with self.assertRaises(AccessError):
            account.read(["password_token"])
        account.unlink()
        self.assertFalse(account.exists())

    def test_saving_from_the_form_never_echoes_the_password(self):
        account = self.account.with_user(self.manager)
        saved = account.web_save(
            {"password": "typed-Pa55", "smtp_password": "typed-2"},
            specification={"password": {}, "smtp_password": {}, "password_set": {}},
        )
        self.assertEqual(
            saved,
            [
                {
                    "id": account.id,
                    "password": False,
                    "smtp_password": False,
                    "password_set": True,
                }
            ],
        )
        created = (
            self.env["email.account"]
            .with_user(self.manager)
            .web_save(
                self.account_values(name="New", password="typed-3"),
                specification={"password": {}},
            )
        )
        self.assertFalse(created[0]["password"])

    def test_system_administrator_is_a_manager(self):
        manager_group = self.env.ref("email_account.group_email_account_manager")
        self.assertIn(manager_group, self.env.ref("base.group_system").all_implied_ids)
        self.assertTrue(
            self.env.ref("base.user_admin").has_group(
                "email_account.group_email_account_manager"
            )
        )

    @mute_logger("odoo.addons.base.models.ir_rule")
    def test_users_see_only_their_companies_accounts(self):
        account_b = self.env["email.account"].create(
            self.account_values(name="B only", company_id=self.company_b.id)
        )
        shared = self.env["email.account"].create(
            self.account_values(name="Shared", company_id=False)
        )
        Account = self.env["email.account"]
        seen_by_a = Account.with_user(self.user).search([]).mapped("name")
        seen_by_b = Account.with_user(self.user_b).search([]).mapped("name")
        self.assertIn("Sales", seen_by_a)
        self.assertIn("Shared", seen_by_a)
        self.assertNotIn("B only", seen_by_a)
        self.assertIn("B only", seen_by_b)
        self.assertIn("Shared", seen_by_b)
        self.assertNotIn("Sales", seen_by_b)
        with self.assertRaises(AccessError):
            account_b.with_user(self.user).read(["name"])
        self.assertEqual(
            shared.with_user(self.user_b).read(["name"])[0]["name"], "Shared"
        )
