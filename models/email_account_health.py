"""Checks in the background, the health watch of accounts."""

import dataclasses
import functools
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import timedelta, timezone

from odoo import Command, api, fields, models, modules
from odoo.exceptions import UserError
from odoo.tools import config, format_datetime, plaintext2html

from ..smtp_engine import MESSAGE_TEXTS, SmtpOutcome, Step, send_test_message
from .email_account import MAX_TIMEOUT, MIN_TIMEOUT
from .email_account_check import PROGRESS_INTERVAL

# At most this many checks wait on the network at once, in parallel threads.
MAX_PARALLEL_CHECKS = 50
# A check answers within the request only if its time-out is at most this
# many seconds, and at most this share of the worker's time limit.
INLINE_CHECK_TIMEOUT = 30
INLINE_CHECK_SHARE = 0.25
# Share of the cron worker's time limit that one run of checks may use: the
# network waits; storing the results and the other jobs the worker runs in
# the same round need the rest (with half, a worker was once killed).
BACKGROUND_CHECK_SHARE = 0.3


class EmailAccountHealth(models.Model):
    _inherit = "email.account"

    health_watch = fields.Boolean(
        default=True,
        tracking=True,
        help="Check this account every day with a real test message, so that "
        "its status stays current; its managers get an activity when it "
        "stops working.",
    )
    check_state = fields.Selection(
        selection=[
            ("idle", "Idle"),
            ("queued", "Waiting for a Check"),
            ("running", "Being Checked"),
        ],
        string="Check in Progress",
        required=True,
        default="idle",
        copy=False,
        readonly=True,
    )
    check_started = fields.Datetime(copy=False, readonly=True)
    check_requested_by = fields.Many2one(
        "res.users",
        copy=False,
        readonly=True,
        help="Who asked for the check that is waiting or running: it runs "
        "in their name and language.",
    )

    def action_send_test_message(self):
        """Send a real message from each account to its own address.

        One account with a short time-out is checked within the request;
        anything longer runs in the background and reports on the bus. An
        account already queued or being checked is not checked twice.
        """
        self.check_access("write")
        if len(self) == 1 and self._can_check_inline() and self._lock_for_check():
            if job := self._prepare_check():
                result, delivery = job()
                self._store_check_result(result, delivery=delivery)
            return self._check_notification()
        return self._queue_checks()

    def _can_check_inline(self):
        """Whether this account's check surely ends well within the request."""
        self.ensure_one()
        # The wait for the mailbox is shown as progress, which only a check
        # in the background can send while it runs.
        limit = config.get("limit_time_real") or 0
        return (
            not self.delivery_check
            and self.smtp_timeout <= INLINE_CHECK_TIMEOUT
            and (limit <= 0 or self.smtp_timeout <= limit * INLINE_CHECK_SHARE)
        )

    def _lock_for_check(self):
        """Lock the accounts of ``self`` that no check holds or waits for.

        Within a request, a second request for the same account then finds it
        locked and waits in the background for this check's result.
        """
        idle = self.filtered(lambda account: account.check_state == "idle")
        locked = idle.try_lock_for_update()
        # Read again once locked: a check claimed and committed since the
        # first read must not be queued or run again.
        locked.invalidate_recordset(["check_state"])
        return locked.filtered(lambda account: account.check_state == "idle")

    def _prepare_check(self, timeout=None, end=None):
        """This account's check as a function that needs no cursor, or None.

        It returns the sending's outcome and what the delivery check found;
        ``end`` (of ``time.monotonic()``) is when the mailbox search must stop.
        """
        self.ensure_one()
        try:
            settings = self._get_smtp_settings()
        except UserError as exc:
            # Nothing to log in with: a secret that this server's key cannot
            # decrypt, a sign-in that the provider will not renew.
            failure = SmtpOutcome(ok=False, step=Step.AUTH, error=type(exc).__name__)
            self._store_check_result(failure, note=exc.args[0])
            return None
        follow = self._delivery_job(settings) if self.delivery_check else None
        if timeout and settings.timeout > timeout:
            settings = dataclasses.replace(settings, timeout=float(timeout))
        translations = {text: self.env._(text) for text in MESSAGE_TEXTS}
        now = fields.Datetime.now()
        # Written as the user's language and time zone write it.
        date_text = format_datetime(self.env, now, dt_format="medium")
        name = self.name

        def check(progress=None):
            result = send_test_message(
                settings,
                name,
                translate=lambda text: translations.get(text, text),
                now=now.replace(tzinfo=timezone.utc),
                date_text=date_text,
            )
            if follow is None or not result.ok:
                return result, None
            return result, follow(result.message_id, time.monotonic(), end, progress)

        return check

    def _queue_checks(self):
        """Have the accounts checked in the background; answer at once."""
        self.env["email.account.check"].sudo().create(
            {
                "user_id": self.env.uid,
                "account_ids": [Command.set(self.ids)],
                "pending_account_ids": [Command.set(self.ids)],
            }
        )
        self._mark_queued(self.env.user)
        self.env.ref("email_account.email_account_cron_run_checks").sudo()._trigger()
        if len(self) == 1:
            message = self.env._(
                "“%(account)s” is being checked. The result appears here when "
                "it is known; you may leave this page.",
                account=self.display_name,
            )
        else:
            message = self.env._(
                "%(count)s accounts are being checked. The progress and the "
                "result appear here; you may leave this page.",
                count=len(self),
            )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": self.env._("Checking in the background"),
                "message": message,
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def _mark_queued(self, requester):
        """Queue the idle accounts of ``self`` for a check by ``requester``.

        The others (queued, being checked, or locked by a check within a
        request) are left alone: their coming result answers this request too.
        """
        self._lock_for_check().sudo().write(
            {"check_state": "queued", "check_requested_by": requester.id}
        )

    @api.model
    def _cron_run_checks(self):
        """Run the checks that wait, as many at once as allowed.

        The job triggers itself again while checks wait, rather than
        reporting progress to the cron runner, which would run it again and
        again within one round of the worker.
        """
        auto_commit = not modules.module.current_test
        budget = self._check_budget()
        everything = self.sudo().with_context(active_test=False)
        requests = self.env["email.account.check"].sudo()
        # Queue again what a killed run left, and what a request waits for.
        stale = fields.Datetime.now() - timedelta(seconds=2 * budget + 60)
        everything.search(
            [("check_state", "=", "running"), ("check_started", "<", stale)]
        ).write({"check_state": "queued"})
        for request in requests.search([("state", "=", "running")]):
            if request.pending_account_ids:
                request.pending_account_ids._mark_queued(request.user_id)
            else:  # its accounts were deleted
                request._send_summary()
        # Claim the accounts to check, committed before any network wait.
        queued = everything.search([("check_state", "=", "queued")], order="id")
        accounts = queued.try_lock_for_update(limit=MAX_PARALLEL_CHECKS)
        accounts.write(
            {"check_state": "running", "check_started": fields.Datetime.now()}
        )
        if auto_commit:
            self.env["ir.cron"]._commit_progress()
        accounts._run_checks(budget, auto_commit)
        cron = self.env.ref("email_account.email_account_cron_run_checks").sudo()
        if everything.search_count([("check_state", "=", "queued")], limit=1):
            cron._trigger()
        elif requests.search_count([("state", "=", "running")], limit=1):
            cron._trigger(fields.Datetime.now() + timedelta(minutes=1))

    @api.model
    def _check_budget(self):
        """Seconds that one run of checks in the background may take."""
        limit = config.get("limit_time_real_cron")
        if limit is None or limit < 0:  # -1: the same limit as requests
            limit = config.get("limit_time_real")
        if not limit or limit <= 0:
            return MAX_TIMEOUT
        return max(limit * BACKGROUND_CHECK_SHARE, MIN_TIMEOUT)

    def _run_checks(self, budget, auto_commit):
        """Check the accounts in parallel threads, each in its requester's name."""
        end = time.monotonic() + budget
        # Seconds waited for each message being searched, set by the threads.
        searching = {}

        def note_wait(acting, waited, _wait, _folder):
            searching[acting] = waited

        jobs = []
        for account in self:
            requester = account.check_requested_by
            acting = account.with_user(requester) if requester else account
            acting = acting.sudo().with_context(lang=acting.env.user.lang)
            shortened = budget if account.smtp_timeout > budget else None
            if job := acting._prepare_check(timeout=shortened, end=end):
                jobs.append((job, acting, shortened))
            elif auto_commit:
                self.env["ir.cron"]._commit_progress(1)
        # All prepared before any starts: a preparation that fails then
        # leaves no message sent whose result nobody would store.
        with ThreadPoolExecutor(MAX_PARALLEL_CHECKS, "email_account_check") as pool:
            futures = {
                pool.submit(job, functools.partial(note_wait, acting)): (acting, short)
                for job, acting, short in jobs
            }
            pending = set(futures)
            told = time.monotonic()
            while pending:
                done, pending = wait(
                    pending, timeout=PROGRESS_INTERVAL, return_when=FIRST_COMPLETED
                )
                for future in done:
                    acting, shortened = futures[future]
                    searching.pop(acting, None)
                    result, delivery = future.result()
                    note = None
                    if shortened and not result.ok and result.hint == "timeout":
                        note = acting.env._(
                            "The check stopped after %(seconds)s seconds, the "
                            "longest that a check in the background may take on "
                            "this server (the account's time-out is %(timeout)s "
                            "seconds).",
                            seconds=int(shortened),
                            timeout=acting.smtp_timeout,
                        )
                    acting._store_check_result(result, note=note, delivery=delivery)
                    if auto_commit:
                        self.env["ir.cron"]._commit_progress(1)
                if searching and time.monotonic() - told >= PROGRESS_INTERVAL:
                    told = time.monotonic()
                    for acting, waited in list(searching.items()):
                        acting._send_search_progress(waited)
                    if auto_commit:
                        self.env["ir.cron"]._commit_progress()

    def _store_check_result(self, result, note=None, delivery=None):
        """Release the account, answer who waits for it, watch its health."""
        self.ensure_one()
        previous_state = self.test_state
        stored = super()._store_check_result(result, note=note, delivery=delivery)
        if self.check_state != "idle" or self.check_requested_by:
            self.sudo().write(
                {
                    "check_state": "idle",
                    "check_started": False,
                    "check_requested_by": False,
                }
            )
        self.env["email.account.check"].sudo()._account_checked(self)
        self._watch_health(result, previous_state)
        return stored

    @api.model
    def _cron_health_watch(self):
        """Queue a check of every active account whose health is watched."""
        accounts = self.sudo().search([("health_watch", "=", True)])
        if accounts:
            accounts._mark_queued(self.env["res.users"])
            self.env.ref("email_account.email_account_cron_run_checks")._trigger()

    def _health_recipients(self):
        """The users told when this account stops working: its managers.

        Members of Email Accounts / Manager of its company (of any company for
        a shared account). Extend it to tell others, a personal account's owner.
        """
        self.ensure_one()
        managers = self.env.ref("email_account.group_email_account_manager").sudo()
        return managers.all_user_ids.filtered(
            lambda user: (
                user.active
                and not user.share
                and (not self.company_id or self.company_id in user.company_ids)
            )
        )

    def _watch_health(self, result, previous_state):
        """Give each health recipient one activity when a working account fails.

        Nobody is told again while they are open; a success marks them done.
        """
        self.ensure_one()
        failure = "email_account.mail_activity_type_email_account_failure"
        account = self.sudo()
        activities = account.activity_search([failure], only_automated=False)
        if result.ok and activities:
            activities.action_feedback(feedback=self.env._("The account works again."))
        if result.ok or activities or previous_state != "ok":
            return
        for user in self._health_recipients():
            localized = account.with_context(lang=user.lang or "en_US")
            headline = localized.env._(
                "The account worked before; now it fails at the step “%(step)s”.",
                step=result.step_label(translate=localized.env._),
            )
            account.activity_schedule(
                failure,
                user_id=user.id,
                summary=localized.env._(
                    "The e-mail account “%(account)s” stopped working",
                    account=account.display_name,
                ),
                note=plaintext2html(localized._describe_failure(result, headline)),
            )

    def _record_sending_result(self, result):
        """Keep the status current with what real sending met."""
        self.ensure_one()
        previous_state = self.sudo().test_state
        # A success matters only after a failure: storing each would cost a
        # write a mail.
        if result.ok and previous_state != "failed":
            return
        self._write_status(
            result,
            self.env._("A message was sent through this account: it works again.")
            if result.ok
            else self._describe_sending_failure(result),
        )
        self._watch_health(result, previous_state)
