"""Checks in the background, the health watch and retries, for real.

The background runner is the cron job's own method, run here directly; it
commits only outside tests. Every SMTP server is a real one on loopback.
"""

from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.tests import tagged
from odoo.tools import config, mute_logger

from odoo.addons.base.models.ir_mail_server import IrMail_Server
from odoo.addons.email_account.smtp_engine.tests.servers import (
    LoopbackSmtpServer,
    SilentServer,
    refused_port,
)

from .common import EmailAccountCase


class BackgroundCase(EmailAccountCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plain = cls.enterClassContext(LoopbackSmtpServer())
        cls.silent = cls.enterClassContext(SilentServer())
        cls.account.write({"smtp_port": cls.plain.port, "smtp_timeout": 5})
        cls.Account = cls.env["email.account"]

    def setUp(self):
        super().setUp()
        self.plain.messages.clear()
        self.plain.reject_sender = self.plain.reject_recipient = None

    def new_account(self, name, **values):
        address = f"{name.lower()}@example.com"
        defaults = {"smtp_port": self.plain.port, "smtp_timeout": 5}
        return self.Account.create(
            self.account_values(
                name=name,
                username=address,
                sender_email=address,
                **{**defaults, **values},
            )
        )

    def run_checks(self):
        self.Account._cron_run_checks()

    def received_by(self, account):
        return [m for m in self.plain.messages if m.rcpt_tos == [account.sender_email]]


@tagged("post_install", "-at_install")
class TestEmailAccountBackground(BackgroundCase):
    def test_many_accounts_are_checked_in_the_background_not_in_the_request(self):
        good = self.new_account("Good")
        refused = self.new_account("Refused", smtp_port=refused_port())
        hanging = self.new_account(
            "Hanging", smtp_port=self.silent.port, smtp_timeout=1
        )
        accounts = good | refused | hanging
        server_action = self.env.ref(
            "email_account.email_account_action_check_settings"
        ).with_user(self.manager)
        action = server_action.with_context(
            active_model="email.account", active_ids=accounts.ids
        ).run()

        self.assertEqual(action["params"]["title"], "Checking in the background")
        self.assertFalse(self.plain.messages)
        self.assertEqual(set(accounts.mapped("check_state")), {"queued"})
        self.assertEqual(set(accounts.mapped("test_state")), {"untested"})

        self.run_checks()
        self.assertEqual(accounts.mapped("test_state"), ["ok", "failed", "failed"])
        self.assertEqual(set(accounts.mapped("check_state")), {"idle"})
        self.assertEqual(accounts.mapped("test_user_id"), self.manager)
        self.assertEqual(len(self.received_by(good)), 1)
        self.assertEqual(hanging.test_step, "Waiting for the server's greeting")

    def test_progress_and_summary_reach_the_requester_on_the_bus(self):
        accounts = self.new_account("One") | self.new_account(
            "Two", smtp_port=refused_port()
        )
        accounts.with_user(self.manager).action_send_test_message()
        self.run_checks()

        notifications = self.simple_notifications(self.manager)
        self.assertEqual(notifications[0]["message"], "1 of 2 checked")
        summary = notifications[-1]
        self.assertEqual(summary["title"], "1 of 2 accounts work")
        self.assertEqual(summary["type"], "danger")
        self.assertIn("Two:", summary["message"])

    def test_one_account_with_a_short_timeout_answers_in_the_request(self):
        action = self.account.with_user(self.manager).action_send_test_message()
        self.assertEqual(action["params"]["title"], "Test message sent")
        self.assertEqual(self.account.test_state, "ok")
        self.assertEqual(self.account.check_state, "idle")

    def test_one_account_with_a_long_timeout_is_checked_in_the_background(self):
        self.account.smtp_timeout = 120
        action = self.account.with_user(self.manager).action_send_test_message()
        self.assertEqual(action["params"]["title"], "Checking in the background")
        self.assertFalse(self.plain.messages)
        self.run_checks()
        self.assertEqual(self.account.test_state, "ok")
        summary = self.simple_notifications(self.manager)[-1]
        self.assertEqual(summary["title"], "Test message sent")

    def test_two_users_checking_the_same_account_get_one_check(self):
        shared = self.new_account("Shared")
        other = self.new_account("Other")
        (shared | other).with_user(self.manager).action_send_test_message()
        shared.smtp_timeout = 120  # so that the second request cannot check inline
        shared.action_send_test_message()
        self.run_checks()

        self.assertEqual(len(self.received_by(shared)), 1)
        self.assertEqual(len(self.received_by(other)), 1)
        requests = self.env["email.account.check"].search([])
        self.assertEqual(requests.mapped("state"), ["done", "done"])
        self.assertEqual(
            self.simple_notifications(self.env.user)[-1]["title"], "Test message sent"
        )

    def test_a_check_longer_than_the_worker_allows_is_shortened_and_says_so(self):
        hanging = self.new_account("Hanging", smtp_port=self.silent.port)
        hanging.smtp_timeout = 60
        hanging.action_send_test_message()
        with patch.dict(
            config.options, {"limit_time_real_cron": 7, "limit_time_real": 120}
        ):
            self.run_checks()
        self.assertEqual(hanging.test_state, "failed")
        self.assertIn("stopped after 2 seconds", hanging.test_message)
        self.assertLess(hanging.test_message.count("\n"), 10)

    def test_a_check_left_running_by_a_killed_run_is_run_again(self):
        self.account.sudo().write(
            {
                "check_state": "running",
                "check_started": fields.Datetime.now() - timedelta(hours=1),
            }
        )
        self.run_checks()
        self.assertEqual(self.account.check_state, "idle")
        self.assertEqual(self.account.test_state, "ok")


@tagged("post_install", "-at_install")
class TestEmailAccountHealthWatch(BackgroundCase):
    def activities(self, account):
        kind = self.env.ref("email_account.mail_activity_type_email_account_failure")
        return account.activity_ids.filtered(lambda a: a.activity_type_id == kind)

    def watch(self):
        self.Account._cron_health_watch()
        self.run_checks()

    def test_a_broken_account_opens_one_activity_that_closes_on_recovery(self):
        self.watch()
        self.assertEqual(self.account.test_state, "ok")
        self.assertFalse(self.activities(self.account))

        self.account.smtp_port = refused_port()
        self.watch()
        activities = self.activities(self.account)
        self.assertEqual(self.account.test_state, "failed")
        self.assertEqual(activities.user_id, self.account._health_recipients())
        self.assertIn(self.manager, activities.user_id)
        self.assertIn("Connecting to the server", activities[0].note)
        self.assertIn("Nothing accepted the connection", activities[0].note)

        self.watch()  # still broken: nobody is told twice
        self.assertEqual(self.activities(self.account), activities)

        self.account.smtp_port = self.plain.port
        self.watch()
        self.assertEqual(self.account.test_state, "ok")
        self.assertFalse(self.activities(self.account))

    def test_the_activity_is_in_the_language_of_each_manager(self):
        self.env["res.lang"]._activate_lang("el_GR")
        self.env["ir.module.module"]._load_module_terms(
            ["email_account"], ["el_GR"], overwrite=True
        )
        self.manager.lang = "el_GR"
        self.watch()
        self.account.smtp_port = refused_port()
        self.watch()
        activity = self.activities(self.account).filtered(
            lambda a: a.user_id == self.manager
        )
        self.assertIn("Σύνδεση με τον διακομιστή", activity.note)

    def test_an_account_not_watched_is_not_checked(self):
        self.account.health_watch = False
        self.watch()
        self.assertEqual(self.account.test_state, "untested")
        self.assertFalse(self.plain.messages)


@tagged("post_install", "-at_install")
class TestEmailAccountRetry(BackgroundCase):
    def setUp(self):
        super().setUp()
        patcher = patch.object(IrMail_Server, "_disable_send", return_value=False)
        patcher.start()
        self.addCleanup(patcher.stop)

    def queue_mail(self):
        return (
            self.env["mail.mail"]
            .with_user(self.user)
            .sudo()
            .create(
                {
                    "email_from": "sales@example.com",
                    "email_to": "customer@example.org",
                    "subject": "Quotation",
                    "body_html": "<p>Here is your quotation.</p>",
                    "auto_delete": False,
                }
            )
        )

    def come_back_later(self, mail):
        mail.email_account_retry_date = fields.Datetime.now() - timedelta(seconds=1)
        self.env["mail.mail"]._cron_email_account_retry()

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_a_temporary_refusal_is_retried_and_delivered(self):
        self.plain.reject_sender = (451, "4.3.0 Try again later")
        mail = self.queue_mail()
        mail.send()
        self.assertEqual(mail.state, "exception")
        self.assertEqual(mail.email_account_retry_count, 1)
        self.assertAlmostEqual(
            mail.email_account_retry_date,
            fields.Datetime.now() + timedelta(minutes=5),
            delta=timedelta(minutes=1),
        )
        self.assertIn("Giving the sender address (MAIL FROM)", mail.failure_reason)
        self.assertIn("451", mail.failure_reason)
        self.assertIn("attempt 2 of 6", mail.failure_reason)

        self.plain.reject_sender = None
        self.come_back_later(mail)
        self.assertEqual(mail.state, "outgoing")
        self.env["mail.mail"].process_email_queue()
        self.assertEqual(mail.state, "sent")
        self.assertEqual(len(self.plain.messages), 1)

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_a_permanent_refusal_is_not_retried_and_says_why(self):
        self.plain.reject_recipient = (550, "5.1.1 No such user")
        mail = self.queue_mail()
        mail.send()
        self.assertEqual(mail.state, "exception")
        self.assertFalse(mail.email_account_retry_date)
        self.assertIn("Giving the recipient address (RCPT TO)", mail.failure_reason)
        self.assertIn("refused the mail for good (reply 550)", mail.failure_reason)
        # The recipient's problem, not the account's.
        self.assertNotEqual(self.account.test_state, "failed")

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_an_unreachable_server_is_retried_and_marks_the_account_failed(self):
        self.account.smtp_port = refused_port()
        mail = self.queue_mail()
        mail.send()
        self.assertEqual(mail.state, "exception")
        self.assertEqual(mail.email_account_retry_count, 1)
        self.assertIn("Connecting to the server", mail.failure_reason)
        self.assertEqual(self.account.test_state, "failed")
        self.assertEqual(self.account.test_step, "Connecting to the server")

        self.account.smtp_port = self.plain.port
        self.come_back_later(mail)
        self.env["mail.mail"].process_email_queue()
        self.assertEqual(mail.state, "sent")
        self.assertEqual(self.account.test_state, "ok")

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_retries_stop_after_the_last_delay(self):
        self.account.smtp_port = refused_port()
        mail = self.queue_mail()
        mail.sudo().email_account_retry_count = 5
        mail.send()
        self.assertEqual(mail.state, "exception")
        self.assertFalse(mail.email_account_retry_date)
        self.assertIn("tried 6 times and stopped", mail.failure_reason)
