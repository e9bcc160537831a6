from odoo.addons.google_gmail.controllers.main import GoogleGmailController
from odoo.addons.microsoft_outlook.controllers.main import MicrosoftOutlookController


def _account_url(record):
    # Core sends whoever is not an administrator to their preferences, the
    # place of personal mail servers; an account has its own form.
    if record._name == "email.account":
        return f"/odoo/email.account/{record.id}"
    return None


class EmailAccountOutlookController(MicrosoftOutlookController):
    def _get_redirect_url(self, record):
        return _account_url(record) or super()._get_redirect_url(record)


class EmailAccountGmailController(GoogleGmailController):
    def _get_redirect_url(self, record):
        return _account_url(record) or super()._get_redirect_url(record)
