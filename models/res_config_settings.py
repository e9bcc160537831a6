"""Settings of personal e-mail accounts (Settings › Email Accounts)."""

from odoo import fields, models

from .email_account_personal import PERSONAL_ACCOUNTS_PARAM, RATE_LIMIT_PARAM


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    email_account_personal_accounts = fields.Selection(
        selection=[("allowed", "Allowed"), ("forbidden", "Not allowed")],
        string="Personal E-mail Accounts",
        default="allowed",
        required=True,
        config_parameter=PERSONAL_ACCOUNTS_PARAM,
        help="Allowed: every internal user may set up the mailbox they send "
        "from. Not allowed: no new personal account can be created, and the "
        "existing ones send nothing until they are allowed again.",
    )
    email_account_personal_rate_limit = fields.Integer(
        string="Messages per Minute",
        config_parameter=RATE_LIMIT_PARAM,
        help="The most messages a personal account sends in a minute; the "
        "rest wait for the next minute. 0: no limit.",
    )
    email_account_personal_count = fields.Integer(
        compute="_compute_email_account_personal_count"
    )

    def _compute_email_account_personal_count(self):
        accounts = self.env["email.account"].with_context(active_test=False)
        self.email_account_personal_count = accounts.search_count(
            [("owner_user_id", "!=", False)]
        )
