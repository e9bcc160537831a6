"""Personal accounts: a salesperson's own mailbox, over real RPC.

A salesperson without any Email Accounts group sets up, checks and sends
through their own account; another salesperson attacks it over JSON-RPC as
the web client or a script could. Odoo's queue sends as its cron would, to
SMTP servers on loopback, and the tests look at what those servers received.
"""

import unittest
from datetime import timedelta

from odoo import fields
from odoo.tests import Form, HttpCase, tagged
from odoo.tests.common import JsonRpcException
from odoo.tools import mute_logger

from .common import JsonRpcMixin, LoopbackSendingMixin, load_greek, new_user

ALICE_LOGIN = "alice@example.com"
ALICE_PASSWORD = "Alice-Mailbox-Pa55"
PERSONAL_PARAM = "email_account.personal_accounts"
RATE_PARAM = "email_account.personal_rate_limit"


class EmailAccountPersonalCase(JsonRpcMixin, LoopbackSendingMixin, HttpCase):
    """Two salespeople, a manager, Alice's mailbox server and a catch-all."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.smtp_alice = cls.login_server({ALICE_LOGIN: ALICE_PASSWORD})
        salesman = (
            "sales_team.group_sale_salesman"
            if cls.env.ref("sales_team.group_sale_salesman", raise_if_not_found=False)
            else "base.group_user"
        )
        groups = f"{salesman},base.group_partner_manager"
        cls.alice = new_user(cls.env, "alice", groups, email=ALICE_LOGIN)
        cls.bob = new_user(cls.env, "bob", groups, email="bob@example.com")
        cls.manager = new_user(
            cls.env, "personal_manager", "email_account.group_email_account_manager"
        )

    def loopback_servers(self):
        return [self.smtp_alice, self.smtp_default]

    def account_values(self, **overrides):
        return {
            "name": "Alice's mailbox",
            "username": ALICE_LOGIN,
            "password": ALICE_PASSWORD,
            "sender_name": "Alice",
            "sender_email": ALICE_LOGIN,
            **self.connection_to(self.smtp_alice),
            **overrides,
        }

    def create_as_alice(self, **overrides):
        """Alice saves a new account from the form, as the web client does."""
        self.log_in(self.alice)
        saved = self.call(
            "email.account",
            "web_save",
            [],
            self.account_values(**overrides),
            specification={"password": {}, "password_set": {}, "owner_user_id": {}},
        )
        return self.env["email.account"].browse(saved[0]["id"]), saved[0]

    def received(self):
        return {
            "alice": [m.auth_login for m in self.smtp_alice.messages],
            "default": len(self.smtp_default.messages),
        }


@tagged("post_install", "-at_install")
class TestEmailAccountPersonal(EmailAccountPersonalCase):
    # The owner sets up and checks their account

    def test_salesperson_creates_and_checks_their_own_account(self):
        self.assertFalse(self.alice.has_group("email_account.group_email_account_user"))
        account, saved = self.create_as_alice()
        self.assertEqual(saved["password"], False)
        self.assertTrue(saved["password_set"])
        self.assertEqual(account.owner_user_id, self.alice)
        self.assertEqual(account.allowed_senders, "owner")

        notification = self.call(
            "email.account", "action_send_test_message", [account.id]
        )

        self.assertEqual(notification["params"]["title"], "Test message sent")
        self.assertEqual(self.received()["alice"], [ALICE_LOGIN])
        read = self.call(
            "email.account",
            "web_read",
            [account.id],
            specification={"test_state": {}, "test_message": {}, "password": {}},
        )[0]
        self.assertEqual(read["test_state"], "ok")
        self.assertIn("accepted by the server", read["test_message"])
        self.assertFalse(read["password"])

    def test_my_account_action_opens_a_new_then_the_own_account(self):
        self.log_in(self.alice)
        action = self.call("email.account", "action_open_my_account")
        self.assertNotIn("res_id", action)
        self.assertEqual(action["context"]["default_sender_email"], ALICE_LOGIN)
        account, _saved = self.create_as_alice()
        action = self.call("email.account", "action_open_my_account")
        self.assertEqual(action["res_id"], account.id)

    def test_preferences_show_and_open_the_own_account(self):
        account, _saved = self.create_as_alice()
        view = self.env.ref("base.view_users_form_simple_modif")
        views = self.call(
            "res.users", "get_views", views=[[view.id, "form"]], options={}
        )
        self.assertIn("action_open_my_email_account", views["views"]["form"]["arch"])
        read = self.call(
            "res.users",
            "web_read",
            [self.alice.id],
            specification={"email_account_personal_ids": {"fields": {"name": {}}}},
        )
        self.assertEqual(
            read[0]["email_account_personal_ids"],
            [{"id": account.id, "name": "Alice's mailbox"}],
        )
        action = self.call("res.users", "action_open_my_email_account", [self.alice.id])
        self.assertEqual(action["res_id"], account.id)

    def test_settings_form_switches_personal_accounts(self):
        settings = Form(self.env["res.config.settings"])
        self.assertEqual(settings.email_account_personal_accounts, "allowed")
        settings.email_account_personal_accounts = "forbidden"
        settings.email_account_personal_rate_limit = 30
        settings.save().execute()
        parameters = self.env["ir.config_parameter"]
        self.assertEqual(parameters.get_param(PERSONAL_PARAM), "forbidden")
        self.assertEqual(self.env["email.account"]._personal_rate_limit(), 30)

    def test_failed_check_shows_the_step_and_hint_to_the_owner(self):
        account, _saved = self.create_as_alice(password="wrong")
        notification = self.call(
            "email.account", "action_send_test_message", [account.id]
        )
        self.assertEqual(
            notification["params"]["title"], "The account settings check failed"
        )
        self.assertIn("Logging in", notification["params"]["message"])
        self.assertEqual(account.test_state, "failed")

    def test_owner_cannot_hand_over_or_open_their_account(self):
        account, _saved = self.create_as_alice()
        attempts = {
            "owner": {"owner_user_id": self.bob.id},
            "all users": {"allowed_senders": "internal_users"},
            "system mail": {"allow_system_mail": True},
        }
        for what, values in attempts.items():
            with (
                self.subTest(attempt=what),
                mute_logger("odoo.http"),
                self.assertRaises(JsonRpcException),
            ):
                self.call("email.account", "write", [account.id], values)
        self.assertEqual(account.owner_user_id, self.alice)
        self.assertEqual(account.allowed_senders, "owner")

    # Nobody else sees, picks or uses it

    def test_other_salesperson_cannot_read_pick_or_change_it(self):
        account, _saved = self.create_as_alice()
        server = account.sudo().mail_server_id
        self.log_in(self.bob)
        self.assertEqual(self.call("email.account", "search_read", [], ["name"]), [])
        try:
            with mute_logger("odoo.http"):
                offered = self.call("ir.mail_server", "name_search", "Alice")
        except JsonRpcException:
            offered = []  # salespeople may not read mail servers at all
        self.assertNotIn(server.id, [found[0] for found in offered])
        attacks = {
            "read": ("read", [account.id], ["name"]),
            "write": ("write", [account.id], {"smtp_port": self.smtp_default.port}),
            "check": ("action_send_test_message", [account.id]),
            "delete": ("unlink", [account.id]),
            "create for Alice": (
                "create",
                self.account_values(owner_user_id=self.alice.id),
            ),
        }
        for what, (method, *args) in attacks.items():
            with (
                self.subTest(attack=what),
                mute_logger("odoo.http"),
                self.assertRaises(JsonRpcException),
            ):
                self.call("email.account", method, *args)
        self.assertEqual(account.smtp_port, self.smtp_alice.port)
        self.assertFalse(self.smtp_alice.connections)

    def test_other_salespersons_mail_from_the_address_takes_the_normal_route(self):
        self.create_as_alice()
        self.log_in(self.bob)
        mails = self.post_to_customer(
            "res.partner", self.customer.id, email_from=ALICE_LOGIN
        )
        composer = self.call(
            "mail.compose.message",
            "create",
            {
                "composition_mode": "comment",
                "model": "res.partner",
                "res_ids": self.customer.ids,
                "body": "From the composer",
                "subject": "Composer",
                "email_from": ALICE_LOGIN,
                "partner_ids": [(6, 0, self.customer.ids)],
            },
            context={"mail_notify_force_send": False},
        )
        self.call(
            "mail.compose.message",
            "action_send_mail",
            [composer],
            context={"mail_notify_force_send": False},
        )
        mails |= self.env["mail.mail"].search([("subject", "=", "Composer")])
        direct = {
            "email_from": ALICE_LOGIN,
            "email_to": "customer@example.org",
            "subject": "Direct",
            "body_html": "<p>Direct</p>",
        }
        with mute_logger("odoo.http"), self.assertRaises(JsonRpcException):
            self.call("mail.mail", "create", direct)
        # Code that creates it for Bob makes him the person responsible.
        mails |= self.env["mail.mail"].with_user(self.bob).sudo().create(direct)
        self.run_queue(mails)
        self.assertEqual(self.received(), {"alice": [], "default": 3})
        self.assertFalse(self.smtp_alice.connections)

    def test_other_salesperson_cannot_force_the_account_server(self):
        account, _saved = self.create_as_alice()
        self.log_in(self.bob)
        with mute_logger("odoo.http"), self.assertRaises(JsonRpcException):
            self.call(
                "res.partner",
                "message_post",
                [self.customer.id],
                body="Forced",
                partner_ids=self.customer.ids,
                message_type="comment",
                subtype_xmlid="mail.mt_comment",
                email_from=ALICE_LOGIN,
                mail_server_id=account.sudo().mail_server_id.id,
            )
        self.assertFalse(self.smtp_alice.connections)

    # The owner's mail leaves through it

    def test_owner_chatter_message_leaves_through_the_account(self):
        self.create_as_alice()
        mails = self.post_to_customer("res.partner", self.customer.id)
        self.run_queue(mails)
        self.assertEqual(self.received(), {"alice": [ALICE_LOGIN], "default": 0})
        self.assertIn(
            "<alice@example.com>", self.smtp_alice.messages[0].message["From"]
        )

    def test_crm_lead_message_leaves_through_the_account(self):
        if "crm.lead" not in self.env:
            raise unittest.SkipTest("crm is not installed")
        self.create_as_alice()
        lead_id = self.call(
            "crm.lead",
            "create",
            {"name": "Big deal", "partner_id": self.customer.id},
        )
        mails = self.post_to_customer("crm.lead", lead_id)
        self.run_queue(mails)
        self.assertEqual(self.received(), {"alice": [ALICE_LOGIN], "default": 0})

    def test_scheduled_message_leaves_through_the_account(self):
        self.create_as_alice()
        scheduled_id = self.call(
            "mail.scheduled.message",
            "create",
            {
                "model": "res.partner",
                "res_id": self.customer.id,
                "author_id": self.alice.partner_id.id,
                "body": "<p>Later</p>",
                "subject": "Scheduled",
                "partner_ids": [(6, 0, self.customer.ids)],
                "scheduled_date": fields.Datetime.to_string(
                    fields.Datetime.now() + timedelta(hours=1)
                ),
            },
        )
        # The hour passes.
        self.env.cr.execute(
            "UPDATE mail_scheduled_message SET scheduled_date = %s WHERE id = %s",
            (fields.Datetime.now() - timedelta(minutes=1), scheduled_id),
        )
        self.env["mail.scheduled.message"].invalidate_model()
        self.env["mail.scheduled.message"].sudo()._post_messages_cron()
        mails = self.env["mail.mail"].search([("subject", "=", "Scheduled")])
        if mails:
            self.run_queue(mails.filtered(lambda mail: mail.state == "outgoing"))
        self.assertEqual(self.received(), {"alice": [ALICE_LOGIN], "default": 0})

    # Settings

    def test_settings_forbid_new_personal_accounts(self):
        account, _saved = self.create_as_alice()
        self.env["ir.config_parameter"].set_param(PERSONAL_PARAM, "forbidden")
        with mute_logger("odoo.http"), self.assertRaises(JsonRpcException):
            self.create_as_alice(name="Another")
        self.assertEqual(
            self.env["email.account"].search([("owner_user_id", "=", self.alice.id)]),
            account,
        )
        # The existing one sends nothing until allowed again.
        self.run_queue(self.post_to_customer("res.partner", self.customer.id))
        self.assertEqual(self.received(), {"alice": [], "default": 1})
        self.assertTrue(account.active)

    def test_rate_limit_delays_the_excess_to_the_next_minute(self):
        self.create_as_alice()
        self.env["ir.config_parameter"].set_param(RATE_PARAM, "2")
        mails = self.env["mail.mail"]
        for _index in range(3):
            mails |= self.post_to_customer("res.partner", self.customer.id)
        self.run_queue(mails)
        self.assertEqual(len(self.received()["alice"]), 2)
        self.assertEqual(self.received()["default"], 0)
        # Sent mail is deleted; the third waits for the next minute.
        waiting = mails.exists()
        self.assertEqual(waiting.state, "outgoing")
        self.assertGreater(waiting.scheduled_date, fields.Datetime.now())

    def test_manager_sees_archives_every_personal_account(self):
        account, _saved = self.create_as_alice()
        self.log_in(self.manager)
        found = self.call(
            "email.account",
            "search_read",
            [("owner_user_id", "!=", False)],
            ["owner_user_id", "test_state"],
        )
        self.assertEqual(
            [(row["id"], row["owner_user_id"][0]) for row in found],
            [(account.id, self.alice.id)],
        )
        self.call("email.account", "action_archive", [account.id])
        self.assertFalse(account.active)
        self.assertFalse(account.sudo().mail_server_id.active)

    # The owner's user goes away

    def test_deleting_the_owner_keeps_queued_mail(self):
        account, _saved = self.create_as_alice()
        mails = self.post_to_customer("res.partner", self.customer.id)
        self.assertEqual(mails.state, "outgoing")
        self.alice.unlink()
        self.assertTrue(account.exists())
        self.assertFalse(account.active)
        self.run_queue(mails)
        self.assertEqual(self.received(), {"alice": [], "default": 1})

    def test_archiving_the_owner_archives_their_accounts(self):
        account, _saved = self.create_as_alice()
        self.alice.action_archive()
        self.assertFalse(account.active)
        self.assertFalse(account.sudo().mail_server_id.active)


@tagged("post_install", "-at_install")
class TestEmailAccountPersonalFailure(EmailAccountPersonalCase):
    """The owner learns of failures in their language and sends again."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        load_greek(cls.env)
        cls.alice.lang = "el_GR"

    def owner_activity(self, account):
        return account.activity_ids.filtered(
            lambda activity: (
                activity.user_id == self.alice
                and activity.activity_type_id
                == self.env.ref("email_account.mail_activity_type_account_failure")
            )
        )

    @mute_logger(
        "odoo.addons.mail.models.mail_mail", "odoo.addons.base.models.ir_mail_server"
    )
    def test_failed_send_tells_the_owner_and_stays_retryable(self):
        account, _saved = self.create_as_alice()
        # The mailbox's password changes at the provider.
        self.smtp_alice.auth[ALICE_LOGIN] = "changed-at-the-provider"
        self.addCleanup(self.smtp_alice.auth.update, {ALICE_LOGIN: ALICE_PASSWORD})
        mails = self.post_to_customer("res.partner", self.customer.id)
        self.run_queue(mails)
        self.assertEqual(mails.state, "exception")
        activity = self.owner_activity(account)
        self.assertEqual(len(activity), 1)
        self.assertIn("απέτυχε στο βήμα", activity.note)
        self.assertEqual(account.failed_mail_count, 1)

        self.call(
            "email.account",
            "write",
            [account.id],
            {"password": "changed-at-the-provider"},
        )
        self.call("email.account", "action_retry_failed_mail", [account.id])
        self.assertEqual(mails.state, "outgoing")
        self.run_queue(mails)
        self.assertEqual(self.received()["alice"], [ALICE_LOGIN])
        self.assertFalse(self.owner_activity(account))

    def test_check_by_a_manager_tells_the_owner(self):
        account, _saved = self.create_as_alice(password="wrong")
        self.log_in(self.manager)
        self.call("email.account", "action_send_test_message", [account.id])
        activity = self.owner_activity(account)
        self.assertEqual(len(activity), 1)
        self.assertIn("Ο έλεγχος απέτυχε", activity.note)
