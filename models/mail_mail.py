"""The mail queue sends through an account only for the people it allows.

The person responsible for a mail is the user who created its message: a
value the ORM sets and no client can choose, unlike the author, a mailing's
responsible or the From. Mail the superuser created (crons, the mailing
queue, the mail gateway) is Odoo's own system mail, except incoming e-mail,
which is nobody's to send through an account.
"""

from odoo import models

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
        mails = (self - refused).with_context(**{QUEUE_ROUTED_KEY: True})
        return super(MailMail, mails).send(
            auto_commit=auto_commit,
            raise_exception=raise_exception,
            post_send_callback=post_send_callback,
        )
