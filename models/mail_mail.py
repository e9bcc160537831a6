"""The mail queue sends through an account only for the people it allows.

The person responsible for a mail is the user who created its message: a
value the ORM sets and no client can choose, unlike the author, a mailing's
responsible or the From. Mail the superuser created (crons, the mailing
queue, the mail gateway) is Odoo's own system mail, except incoming e-mail,
which is nobody's to send through an account.
"""

from datetime import timedelta

from odoo import fields, models

from .ir_mail_server import QUEUE_ROUTED_KEY


class MailMail(models.Model):
    _inherit = "mail.mail"

    def _filter_mail_mail_servers(self, mail_servers):
        mail_servers = super()._filter_mail_mail_servers(mail_servers)
        accounts = mail_servers.sudo().email_account_id
        for message in self.sudo().mail_message_id:
            if not accounts:
                break
            creator = message.create_uid
            if creator and not creator._is_superuser():
                accounts = accounts._usable_by(creator)
            elif message.message_type == "email" or not creator:
                accounts = accounts.browse()
            else:
                accounts = accounts._usable_by(creator.browse())
        return mail_servers.filtered(
            lambda server: server.sudo().email_account_id <= accounts
        )

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
            refused.write(
                {
                    "state": "exception",
                    "failure_reason": self.env._(
                        "You may not send through this mail server."
                    ),
                }
            )
            refused._postprocess_sent_message(
                success_pids=[], success_emails=[], failure_type="mail_smtp"
            )
        mails = (self - refused)._email_account_throttle()
        mails = mails.with_context(**{QUEUE_ROUTED_KEY: True})
        return super(MailMail, mails).send(
            auto_commit=auto_commit,
            raise_exception=raise_exception,
            post_send_callback=post_send_callback,
        )

    # --- Personal accounts: rate limit ------------------------------------
    #
    # The settings may limit how many messages a personal account sends a
    # minute, as core limits its own personal servers: the excess waits for
    # a later run of the queue. The count per minute is kept in the
    # throttling fields core gives every outgoing mail server.

    def _email_account_throttle(self):
        """The mails to send now: the excess of personal accounts waits."""
        limit = self.env["email.account"]._personal_rate_limit()
        if not limit or not self:
            return self
        servers = self.env["ir.mail_server"].sudo()
        routed = self.with_context(**{QUEUE_ROUTED_KEY: True})
        delayed = self.browse()
        for server_id, _alias, _from, ids in routed._split_by_mail_configuration():
            server = servers.browse(server_id)
            if server and server.email_account_id.owner_user_id:
                delayed |= self.browse(ids)._email_account_delay_excess(server, limit)
        return self - delayed

    def _email_account_delay_excess(self, server, limit):
        """Count these mails against ``server``'s minute; delay the excess."""
        minute = fields.Datetime.now().replace(second=0, microsecond=0)
        count = server.owner_limit_count if server.owner_limit_time == minute else 0
        delayed = self.browse()
        for mail in self.sorted(lambda mail: (mail.create_date, mail.id)):
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
        return delayed
