"""The mail queue: who may send each mail through an account, rate, retries."""

from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import format_datetime

from .ir_mail_server import CONNECTION_FAILURE, QUEUE_ROUTED_KEY, sending_failures

# Minutes to wait before each new attempt after a temporary failure; after
# the last one a person decides.
RETRY_DELAYS = (5, 15, 60, 240, 720)
# Within one send(): who may use which servers, asked once per sender.
USABLE_MEMO_KEY = "email_account_usable_servers"
# Failures without a server reply that mean "unreachable for now".
TEMPORARY_HINTS = {"timeout", "connection_refused", "disconnected", "dns_failed"}


class MailMail(models.Model):
    _inherit = "mail.mail"

    email_account_retry_count = fields.Integer(
        string="Automatic Retries",
        copy=False,
        readonly=True,
        help="How many times Odoo sent this mail again after a temporary "
        "failure of its e-mail account's server.",
    )
    email_account_retry_date = fields.Datetime(
        string="Next Automatic Retry",
        copy=False,
        readonly=True,
        index="btree_not_null",
    )

    def _filter_mail_mail_servers(self, mail_servers):
        # Core asks once per mail, with the same servers each time, and
        # both its rule and ours depend only on who created the messages.
        memo = self.env.cr.cache.get(USABLE_MEMO_KEY, {})
        senders = frozenset(
            (message.create_uid, message.message_type == "email")
            for message in self.sudo().mail_message_id
        )
        key = (frozenset(mail_servers.ids), senders)
        if key not in memo:
            # Whose mail it is: the user who created its message, a value the
            # ORM sets and no client chooses (unlike the author or the From).
            # The superuser's is Odoo's system mail, but incoming e-mail nobody's.
            accounts = mail_servers.sudo().email_account_id
            for creator, incoming in senders:
                if not creator or (incoming and creator._is_superuser()):
                    accounts = accounts.browse()
                else:
                    accounts = accounts._usable_by(creator)
            allowed = super()._filter_mail_mail_servers(mail_servers)
            memo[key] = [
                server.id
                for server in allowed
                if server.sudo().email_account_id <= accounts
            ]
        return mail_servers.browse(memo[key])

    def send(self, auto_commit=False, raise_exception=False, post_send_callback=None):
        # A mail forced onto an account it may not use fails on its own,
        # rather than stopping the whole batch at every run of the queue.
        refused = self.filtered(
            lambda mail: (
                mail.mail_server_id
                and not mail._filter_mail_mail_servers(mail.mail_server_id)
            )
        )
        if refused:
            reason = self.env._("You may not send through this mail server.")
            refused.write({"state": "exception", "failure_reason": reason})
            refused._postprocess_sent_message(
                success_pids=[], success_emails=[], failure_type="mail_smtp"
            )
        mails = (self - refused).with_context(**{QUEUE_ROUTED_KEY: True})
        self.env.cr.cache[USABLE_MEMO_KEY] = {}
        try:
            return super(MailMail, mails._email_account_throttle()).send(
                auto_commit=auto_commit,
                raise_exception=raise_exception,
                post_send_callback=post_send_callback,
            )
        finally:
            self.env.cr.cache.pop(USABLE_MEMO_KEY, None)

    # Personal accounts' rate limit, counted per minute in the throttling
    # fields core gives every outgoing mail server, as for its personal ones.

    def _email_account_throttle(self):
        """The mails to send now: the excess of personal accounts waits."""
        limit = self.env["email.account"]._personal_rate_limit()
        if not limit or not self:
            return self
        minute = fields.Datetime.now().replace(second=0, microsecond=0)
        delayed = self.browse()
        for server_id, _alias, _from, ids in self._split_by_mail_configuration():
            server = self.env["ir.mail_server"].sudo().browse(server_id)
            if not server.email_account_id.owner_user_id:
                continue
            count = server.owner_limit_count if server.owner_limit_time == minute else 0
            for mail in self.browse(ids).sorted("create_date, id"):
                size = len(mail.recipient_ids) or 1
                # A mail bigger than the limit still leaves, alone in its minute.
                if count and count + size > limit:
                    delayed |= mail
                else:
                    count += size
            server.write({"owner_limit_time": minute, "owner_limit_count": count})
        if delayed:
            next_minute = minute + timedelta(minutes=1)
            delayed.sudo().write({"scheduled_date": next_minute})
            self.env.ref("mail.ir_cron_mail_scheduler_action")._trigger(next_minute)
        return self - delayed

    # Retries

    def _postprocess_sent_message(
        self, success_pids, success_emails, failure_reason=False, failure_type=None
    ):
        """Name the failed step, and plan a new attempt if it may work later."""
        failures = sending_failures(self.env) if failure_type else {}
        # After a failed connection core marks the whole batch as "mail_smtp".
        batch = failure_type == "mail_smtp" and failures.pop(CONNECTION_FAILURE, None)
        for mail in self.filtered(lambda mail: mail.state == "exception"):
            if failure := batch or failures.pop(mail.message_id, None):
                mail._email_account_plan_retry(*failure)
        return super()._postprocess_sent_message(
            success_pids,
            success_emails,
            failure_reason=failure_reason,
            failure_type=failure_type,
        )

    def _email_account_plan_retry(self, result, failure_reason):
        """Plan the next attempt of this failed mail, or say why there is none."""
        self.ensure_one()
        # Whether sending may work later without anybody changing anything:
        # a 4xx reply says so by definition (RFC 5321), a 5xx reply says the
        # opposite; without a reply, an unreachable server is temporary and
        # a refused certificate or missing password is not.
        if result.code and result.code > 0:
            temporary = 400 <= result.code < 500
        else:
            temporary = result.hint in TEMPORARY_HINTS
        attempts = len(RETRY_DELAYS) + 1
        count = self.email_account_retry_count
        values = {"email_account_retry_date": False}
        if temporary and count < len(RETRY_DELAYS):
            when = fields.Datetime.now() + timedelta(minutes=RETRY_DELAYS[count])
            note = self.env._(
                "This failure is temporary: Odoo sends the mail again at "
                "%(date)s (attempt %(attempt)s of %(attempts)s).",
                date=format_datetime(self.env, when, dt_format="medium"),
                attempt=count + 2,
                attempts=attempts,
            )
            values.update(
                email_account_retry_count=count + 1, email_account_retry_date=when
            )
            cron = self.env.ref("email_account.email_account_cron_retry_mail")
            cron.sudo()._trigger(when)
        elif temporary:
            note = self.env._(
                "Odoo tried %(attempts)s times and stopped: send the mail again "
                "once the server works.",
                attempts=attempts,
            )
        elif result.code and result.code >= 500:
            note = self.env._(
                "The server refused the mail for good (reply %(code)s): Odoo "
                "does not send it again by itself. Correct what the server "
                "names, then send it again.",
                code=result.code,
            )
        else:
            note = self.env._(
                "This failure needs a change of the account's settings: Odoo "
                "does not send the mail again by itself."
            )
        values["failure_reason"] = f"{failure_reason}\n{note}"
        self.sudo().write(values)

    @api.model
    def _cron_email_account_retry(self):
        """Put back in the queue the mail whose next attempt is due."""
        now = fields.Datetime.now()
        due = self.sudo().search(
            [("state", "=", "exception"), ("email_account_retry_date", "<=", now)]
        )
        if due:
            due.write({"state": "outgoing", "email_account_retry_date": False})
            self.env.ref("mail.ir_cron_mail_scheduler_action").sudo()._trigger()
