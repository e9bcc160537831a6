"""Keep the mail queue from sending through accounts of other companies.

The queue picks servers for a message among those the message may use
(``_filter_mail_mail_servers``); an account's server is among them only when
the account is shared or belongs to a company of the user who wrote the
message. The same check refuses a message forced onto such a server.
"""

from odoo import models


class MailMail(models.Model):
    _inherit = "mail.mail"

    def _filter_mail_mail_servers(self, mail_servers):
        mail_servers = super()._filter_mail_mail_servers(mail_servers)
        authors = self.sudo().mail_message_id.create_uid
        return mail_servers.filtered(
            lambda server: server.sudo().email_account_id._may_be_used_by(authors)
        )
