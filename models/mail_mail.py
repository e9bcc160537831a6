"""Keep the mail queue from sending through accounts of other companies.

The queue picks servers for a message among those the message may use
(``_filter_mail_mail_servers``); an account's server is among them only when
the account is shared or belongs to a company of the users behind the
message: the user who created it and the users of its author. The author
counts because scheduled sending (a mass mailing's queue, for instance)
creates the message as the superuser on behalf of its author. The same check
refuses a message forced onto such a server.
"""

from odoo import models


class MailMail(models.Model):
    _inherit = "mail.mail"

    def _filter_mail_mail_servers(self, mail_servers):
        mail_servers = super()._filter_mail_mail_servers(mail_servers)
        messages = self.sudo().mail_message_id
        senders = messages.create_uid | messages.author_id.user_ids
        return mail_servers.filtered(
            lambda server: server.sudo().email_account_id._may_be_used_by(senders)
        )
