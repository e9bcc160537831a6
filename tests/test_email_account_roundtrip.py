"""The round trip of the check: the test message found in the mailbox, and trust.

Each test sends through a real SMTP server on loopback that files the message
in a real Dovecot mailbox (inbox or Junk, with an Authentication-Results
header as a receiving provider adds), and the sender domain's SPF and DMARC
records come from a real DNS server on loopback.
"""

import tempfile
import time
import unittest
from unittest.mock import patch

from odoo.exceptions import ValidationError
from odoo.tests import Form, tagged
from odoo.tools import config, mute_logger

from odoo.addons.email_account.smtp_engine.tests.dns_server import LoopbackDnsServer
from odoo.addons.email_account.smtp_engine.tests.dovecot import (
    DeliveringSmtpServer,
    DovecotServer,
    dovecot_missing,
)
from odoo.addons.email_account.smtp_engine.tests.servers import (
    make_test_certificates,
    refused_port,
)

from .common import EmailAccountCase, load_greek

MAILBOX = "sales@example.com"
PASSWORD = "s3cret-Pa55"
FAILING = (
    "mx.example.test; spf=fail (127.0.0.1 is not allowed) "
    "smtp.mailfrom=sales@refused.test; dkim=none (no signature); "
    'dmarc=fail reason="SPF and DKIM failed" header.from=refused.test'
)
PASSING = (
    "mx.example.test; spf=pass smtp.mailfrom=sales@allowed.test; "
    "dkim=pass header.d=allowed.test; dmarc=pass header.from=allowed.test"
)
ZONE = """
allowed.test.         300 IN TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc.allowed.test.  300 IN TXT "v=DMARC1; p=reject"
refused.test.         300 IN TXT "v=spf1 ip4:192.0.2.1 -all"
_dmarc.refused.test.  300 IN TXT "v=DMARC1; p=quarantine"
nodmarc.test.         300 IN TXT "v=spf1 ip4:127.0.0.1 -all"
"""


@tagged("post_install", "-at_install")
class TestEmailAccountRoundTrip(EmailAccountCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if missing := dovecot_missing():
            raise unittest.SkipTest(missing)
        certs_dir = cls.enterClassContext(tempfile.TemporaryDirectory())
        cls.certs = make_test_certificates(certs_dir)
        cls.dovecot = cls.enterClassContext(
            DovecotServer(cls.certs, {MAILBOX: PASSWORD})
        )
        cls.dns = cls.enterClassContext(LoopbackDnsServer(ZONE))
        cls.startClassPatcher(
            patch.dict(
                config.options,
                {
                    "email_account_ca_file": str(cls.certs.ca_cert),
                    "email_account_dns_server": cls.dns.address,
                },
            )
        )
        cls.smtp = cls.enterClassContext(DeliveringSmtpServer(cls.dovecot, MAILBOX))

    def setUp(self):
        super().setUp()
        self.dovecot.empty(MAILBOX)
        self.smtp.folder = "INBOX"
        self.smtp.authentication_results = PASSING
        self.smtp.delay = 0.0

    def checked_account(self, **overrides):
        values = {
            "name": "Round trip",
            "sender_email": "sales@allowed.test",
            "smtp_port": self.smtp.port,
            "smtp_timeout": 5,
            "delivery_check": True,
            "imap_host": "127.0.0.1",
            "imap_port": self.dovecot.port,
            "imap_encryption": "ssl",
            "roundtrip_wait": 10,
        }
        values.update(overrides)
        return self.env["email.account"].create(self.account_values(**values))

    def check(self, account, user=None):
        """Press the check button, then run the background check it queues."""
        action = account.with_user(user or self.env.user).action_send_test_message()
        self.env["email.account"]._cron_run_checks()
        return action

    def in_mailbox(self, folder):
        return [
            raw
            for raw in self.dovecot.folder_messages(MAILBOX, folder)
            if b"X-Email-Account-Test" in raw
        ]

    def test_message_found_in_the_inbox_with_its_time_and_route(self):
        account = self.checked_account()

        self.check(account)

        self.assertEqual(account.test_state, "ok")
        self.assertEqual(account.roundtrip_state, "inbox")
        self.assertLess(account.roundtrip_seconds, 10)
        self.assertIn("arrived in the inbox", account.roundtrip_message)
        self.assertIn(
            "1. from client.example.test by mx.example.test with ESMTPS",
            account.roundtrip_message,
        )
        self.assertNotIn("arrived in the inbox", account.test_message)

    def test_message_filed_as_spam_is_found_in_junk(self):
        self.smtp.folder = "Junk"
        account = self.checked_account()

        self.check(account)

        self.assertEqual(account.roundtrip_state, "junk")
        self.assertEqual(account.trust_level, "problem")
        self.assertIn("arrived in the spam folder", account.roundtrip_message)

    def test_message_that_never_arrives_times_out_within_the_wait(self):
        self.smtp.folder = None
        account = self.checked_account(roundtrip_wait=5)

        started = time.monotonic()
        self.check(account)
        took = time.monotonic() - started

        self.assertEqual(account.test_state, "ok")
        self.assertEqual(account.roundtrip_state, "not_found")
        self.assertIn("within 5 seconds", account.roundtrip_message)
        self.assertLess(took, 5 + 3)

    def test_refused_imap_login_is_its_own_step_with_its_hint(self):
        # A server of its own: Dovecot slows down logins after a refused one.
        refusing = self.enterContext(DovecotServer(self.certs, {MAILBOX: PASSWORD}))
        account = self.checked_account(
            password="not-the-mailbox-Pa55", imap_port=refusing.port
        )

        self.check(account)

        self.assertEqual(account.test_state, "ok")
        self.assertEqual(account.roundtrip_state, "failed")
        self.assertIn("Logging in to the mailbox (IMAP)", account.roundtrip_message)
        self.assertIn("refused the user name or password", account.roundtrip_message)
        self.assertNotIn("not-the-mailbox-Pa55", account.roundtrip_transcript)
        self.assertIn("LOGIN ********", account.roundtrip_transcript)

    def test_spf_fail_dkim_none_and_dmarc_fail_are_each_reported(self):
        self.smtp.authentication_results = FAILING
        account = self.checked_account(sender_email="sales@refused.test")

        self.check(account)

        self.assertEqual(
            (account.trust_spf, account.trust_dkim, account.trust_dmarc),
            ("fail", "none", "fail"),
        )
        self.assertEqual(account.trust_level, "problem")
        message = account.trust_message
        self.assertIn("SPF: fail (127.0.0.1 is not allowed) — SPF failed", message)
        self.assertIn("DKIM: none (no signature) — DKIM: the message carries", message)
        self.assertIn("DMARC: fail (SPF and DKIM failed) — DMARC failed", message)
        self.assertIn("does not allow the SMTP server 127.0.0.1 (127.0.0.1)", message)

    def test_trusted_domain_and_passing_verdicts(self):
        account = self.checked_account()

        self.check(account)

        self.assertEqual(account.trust_level, "ok")
        self.assertIn("allows the SMTP server 127.0.0.1", account.trust_message)
        self.assertIn("DMARC policy of allowed.test is “reject”", account.trust_message)

    def test_domain_without_dmarc_record_is_told_what_receivers_do(self):
        account = self.checked_account(sender_email="sales@nodmarc.test")

        self.check(account)

        self.assertIn(
            "Your domain nodmarc.test publishes no DMARC policy: Gmail and Yahoo "
            "refuse bulk mail without one.",
            account.trust_message,
        )
        self.assertEqual(account.trust_level, "problem")

    def test_found_message_is_deleted_from_the_mailbox(self):
        account = self.checked_account()

        self.check(account)

        self.assertEqual(account.roundtrip_state, "inbox")
        self.assertEqual(self.in_mailbox("INBOX"), [])
        self.assertIn("deleted from the mailbox", account.roundtrip_message)

    def test_found_message_is_kept_when_the_option_is_off(self):
        account = self.checked_account(roundtrip_delete=False)

        self.check(account)

        self.assertEqual(len(self.in_mailbox("INBOX")), 1)
        self.assertNotIn("deleted from the mailbox", account.roundtrip_message)

    def test_account_without_delivery_check_works_as_before(self):
        account = self.checked_account(delivery_check=False)

        self.check(account)

        self.assertEqual(account.test_state, "ok")
        self.assertEqual(account.roundtrip_state, "untested")
        self.assertFalse(account.trust_message)

    def test_summary_for_those_who_pick_the_account(self):
        self.smtp.folder = "Junk"
        account = self.checked_account()
        self.assertEqual(account._delivery_summary(), "")

        self.check(account)

        self.assertEqual(account._delivery_summary(), "Delivered to Spam · At Risk")

    def test_the_check_is_posted_in_the_chatter(self):
        account = self.checked_account()

        self.check(account)

        self.assertIn("arrived in the inbox", account.message_ids[0].body)

    def test_delivery_check_runs_in_the_background_and_shows_its_wait(self):
        self.smtp.delay = 5.0
        account = self.checked_account()

        action = self.check(account, user=self.manager)

        self.assertEqual(action["params"]["title"], "Checking in the background")
        self.assertEqual(account.roundtrip_state, "inbox")
        notifications = self.simple_notifications(self.manager)
        waiting = [n for n in notifications if n["title"] == "Checking “Round trip”"]
        self.assertTrue(waiting)
        self.assertRegex(
            waiting[0]["message"],
            r"^The server accepted the test message\. Looking for it in the "
            r"mailbox: \d+ of 10 seconds\.$",
        )

    def test_the_wait_and_the_delivery_are_told_in_greek(self):
        load_greek(self.env)
        self.manager.lang = "el_GR"
        self.smtp.delay = 5.0
        account = self.checked_account()

        self.check(account, user=self.manager)

        *waiting, summary = self.simple_notifications(self.manager)
        waiting = [n for n in waiting if n["title"] == "Έλεγχος του «Round trip»"]
        self.assertTrue(waiting)
        self.assertRegex(
            waiting[0]["message"],
            r"^Ο διακομιστής δέχτηκε το δοκιμαστικό μήνυμα\. Αναζήτησή του στο "
            r"γραμματοκιβώτιο: \d+ από 10 δευτερόλεπτα\.$",
        )
        self.assertIn("έφτασε στα εισερχόμενα", summary["message"])

    def test_the_requester_is_told_where_the_message_landed(self):
        self.smtp.folder = "Junk"
        account = self.checked_account()

        self.check(account, user=self.manager)

        summary = self.simple_notifications(self.manager)[-1]
        self.assertEqual(summary["title"], "Test message sent")
        self.assertIn("accepted by the server", summary["message"])
        self.assertIn("arrived in the spam folder", summary["message"])
        self.assertIn("Sender domain allowed.test:", summary["message"])

    def test_accounts_are_followed_into_their_mailboxes_side_by_side(self):
        self.smtp.delay = 5.0
        first = self.checked_account(name="First")
        second = self.checked_account(name="Second")

        (first | second).with_user(self.manager).action_send_test_message()
        self.env["email.account"]._cron_run_checks()

        # Both searches were under way at once: each requester notification
        # round saw both of them waiting.
        waiting = {
            n["title"]
            for n in self.simple_notifications(self.manager)
            if n["title"].startswith("Checking “")
        }
        self.assertEqual(waiting, {"Checking “First”", "Checking “Second”"})
        self.assertEqual((first | second).mapped("roundtrip_state"), ["inbox", "inbox"])

    def test_wait_is_cut_to_what_a_background_check_may_take(self):
        self.smtp.folder = None
        account = self.checked_account(roundtrip_wait=60)

        with patch.dict(config.options, {"limit_time_real_cron": 20}):
            self.check(account)

        self.assertEqual(account.roundtrip_state, "not_found")
        self.assertRegex(account.roundtrip_message, r"within [56] seconds")
        self.assertIn(
            "The search stopped there, the longest that a check in the background "
            "may take on this server (the account waits 60 seconds).",
            account.roundtrip_message,
        )

    def test_a_failed_sending_forgets_the_previous_delivery(self):
        account = self.checked_account()
        self.check(account)
        self.assertEqual(account.roundtrip_state, "inbox")

        account.smtp_port = refused_port()
        account.password = PASSWORD
        self.check(account)

        self.assertEqual(account.test_state, "failed")
        self.assertEqual(account.roundtrip_state, "untested")
        self.assertFalse(account.trust_message)


@tagged("post_install", "-at_install")
class TestEmailAccountIncomingSettings(EmailAccountCase):
    def test_imap_server_follows_the_smtp_server_by_default(self):
        account = self.env["email.account"].create(
            self.account_values(smtp_host="smtp.example.com")
        )

        self.assertEqual(account.imap_host_used, "imap.example.com")

    def test_changing_the_imap_server_removes_the_stored_password(self):
        self.assertTrue(self.account.password_set)

        self.account.imap_host = "imap.elsewhere.example.com"

        self.assertFalse(self.account.password_set)

    def test_changing_the_imap_port_removes_the_stored_password(self):
        self.account.imap_port = 143

        self.assertFalse(self.account.password_set)

    def test_changing_the_imap_server_warns_that_the_password_goes(self):
        with (
            self.assertLogs("odoo.tests.form.onchange", "WARNING") as logs,
            Form(self.account) as form,
        ):
            form.delivery_check = True
            form.imap_host = "imap.elsewhere.example.com"

        self.assertIn("The stored password will be removed", logs.output[0])

    def test_imap_security_suggests_its_usual_port(self):
        # The account has a password: the form warns that saving drops it.
        with mute_logger("odoo.tests.form.onchange"), Form(self.account) as form:
            form.delivery_check = True
            form.imap_encryption = "starttls"
            self.assertEqual(form.imap_port, 143)

    def test_invalid_imap_host_is_refused(self):
        with self.assertRaises(ValidationError):
            self.account.imap_host = "bad host"

    def test_wait_for_delivery_is_bounded(self):
        with self.assertRaises(ValidationError):
            self.account.roundtrip_wait = 3600
