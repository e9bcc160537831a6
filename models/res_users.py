"""Users' personal e-mail accounts, archived with their user.

Their mail still queued is not lost: the archived account's server is
archived too, so that mail leaves by Odoo's normal route.
"""

from odoo import api, fields, models


class ResUsers(models.Model):
    _inherit = "res.users"

    email_account_personal_ids = fields.One2many(
        "email.account",
        "owner_user_id",
        string="Personal E-mail Accounts",
        readonly=True,
    )

    @property
    def SELF_READABLE_FIELDS(self):
        return [*super().SELF_READABLE_FIELDS, "email_account_personal_ids"]

    def write(self, vals):
        result = super().write(vals)
        if "active" in vals and not vals["active"]:
            self.sudo().email_account_personal_ids.write({"active": False})
        return result

    @api.ondelete(at_uninstall=False)
    def _unlink_archive_personal_email_accounts(self):
        self.sudo().email_account_personal_ids.write({"active": False})

    def action_open_my_email_account(self):
        """From the preferences: the user's own account, or a new one."""
        return self.env["email.account"].action_open_my_account()
