"""Personal accounts: an internal user's own mailbox, for their mail alone.

Its owner manages it without any Email Accounts group; the record rules hide
it from everybody else but the managers.
"""

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import email_normalize, plaintext2html

PERSONAL_ACCOUNTS_PARAM = "email_account.personal_accounts"
RATE_LIMIT_PARAM = "email_account.personal_rate_limit"
FAILURE_ACTIVITY = "email_account.mail_activity_type_account_failure"


class EmailAccountPersonal(models.Model):
    _inherit = "email.account"

    owner_user_id = fields.Many2one(
        "res.users",
        string="Owner",
        readonly=True,
        index="btree_not_null",
        # An account whose owner is deleted stays personal (see
        # allowed_senders) and archived: usable by nobody.
        ondelete="set null",
        tracking=True,
        help="The user whose personal account this is: only they send "
        "through it, only they and the Email Accounts managers see it.",
    )
    is_own_account = fields.Boolean(compute="_compute_is_own_account")
    can_manage = fields.Boolean(
        compute="_compute_is_own_account",
        help="The current user may edit and check the account: a manager, or "
        "the owner of a personal account.",
    )
    owner_email_mismatch = fields.Boolean(
        compute="_compute_owner_email_mismatch",
        string="Owner's Address Differs",
    )
    failed_mail_count = fields.Integer(compute="_compute_failed_mail_count")

    @api.depends("owner_user_id")
    @api.depends_context("uid")
    def _compute_is_own_account(self):
        manager = self.env.user.has_group("email_account.group_email_account_manager")
        for account in self:
            account.is_own_account = account.owner_user_id == self.env.user
            # A new account is the user's own until saved.
            account.can_manage = (
                manager or account.is_own_account or not account._origin
            )

    @api.model
    def _get_view(self, view_id=None, view_type="form", **options):
        arch, view = super()._get_view(view_id, view_type, **options)
        if view_type == "form":
            # An account the user may only read (a shared one, for an Email
            # Accounts user) shows read-only rather than refusing the save.
            for node in arch.xpath("//field[not(@readonly)]"):
                node.set("readonly", "not can_manage")
        return arch, view

    @api.depends("sender_email", "owner_user_id.email")
    def _compute_owner_email_mismatch(self):
        for account in self:
            owner = account.sudo().owner_user_id
            account.owner_email_mismatch = bool(owner) and (
                email_normalize(owner.email or "")
                != email_normalize(account.sender_email or "")
            )

    def _compute_failed_mail_count(self):
        for account in self:
            account.failed_mail_count = len(account._failed_mail())

    @api.constrains("owner_user_id", "allowed_senders", "allow_system_mail")
    def _check_personal_account(self):
        for account in self:
            owner = account.owner_user_id
            for_owner = account.allowed_senders == "owner"
            if owner and not owner._is_internal():
                raise ValidationError(
                    self.env._("Only internal users have personal e-mail accounts.")
                )
            if owner and (not for_owner or account.allow_system_mail):
                raise ValidationError(
                    self.env._(
                        "A personal account sends only its owner's mail: it cannot "
                        "be opened to other users or to Odoo's system mail."
                    )
                )
            if not owner and for_owner:
                raise ValidationError(
                    self.env._(
                        "Only a personal account is for its owner only. Choose who "
                        "may send through the shared account “%(account)s”.",
                        account=account.display_name,
                    )
                )

    @api.model
    def _personal_accounts_allowed(self):
        parameters = self.env["ir.config_parameter"].sudo()
        return parameters.get_param(PERSONAL_ACCOUNTS_PARAM, "allowed") != "forbidden"

    @api.model
    def _personal_rate_limit(self):
        """Messages per minute a personal account may send; 0: no limit."""
        value = self.env["ir.config_parameter"].sudo().get_param(RATE_LIMIT_PARAM)
        try:
            return max(int(value or 0), 0)
        except ValueError:
            return 0

    @api.model_create_multi
    def create(self, vals_list):
        """Make the accounts that users create for themselves personal.

        Managers create a personal account by naming its owner; the record
        rules refuse anybody else any account but their own.
        """
        user = self.env.user
        manager = self.env.su or user.has_group(
            "email_account.group_email_account_manager"
        )
        default_owner = self.env.context.get("default_owner_user_id")
        vals_list = [dict(vals) for vals in vals_list]
        for vals in vals_list:
            if not manager:
                vals.setdefault("owner_user_id", default_owner or user.id)
            if vals.get("owner_user_id", default_owner):
                if not self._personal_accounts_allowed():
                    raise UserError(
                        self.env._(
                            "Personal e-mail accounts are not allowed in this "
                            "database. Ask an Email Accounts manager to set up an "
                            "account for you."
                        )
                    )
                vals.setdefault("allowed_senders", "owner")
        return super().create(vals_list)

    def write(self, vals):
        """Nobody hands a personal account over or makes an account personal."""
        if not self.env.su and "owner_user_id" in vals:
            owner_id = vals["owner_user_id"] or False
            if any(account.owner_user_id.id != owner_id for account in self):
                raise UserError(
                    self.env._(
                        "The owner of an e-mail account is set when the account "
                        "is created and never changes."
                    )
                )
        return super().write(vals)

    def _owned_by(self, user):
        if not (self._personal_accounts_allowed() and user._is_internal()):
            return super()._owned_by(user)
        return self.filtered(lambda account: account.owner_user_id == user)

    @api.model
    def action_open_my_account(self):
        """Open the current user's personal account, or a new one for them."""
        user = self.env.user
        domain = [("owner_user_id", "=", user.id)]
        return self.search(domain)._get_records_action(
            name=self.env._("My E-mail Account"),
            domain=domain,
            context={
                "default_owner_user_id": user.id,
                "default_allowed_senders": "owner",
                "default_name": user.name,
                "default_sender_name": user.name,
                "default_sender_email": user.email,
                "default_username": user.email,
            },
        )

    def action_use_address_for_owner(self):
        """Make the account's address the owner's own, as their mail's From."""
        self.ensure_one()
        if self.owner_user_id != self.env.user:
            raise UserError(
                self.env._("Only the owner of the account changes their address.")
            )
        self.env.user.email = self.sender_email

    def _failed_mail(self):
        """The owner's mail from this account's address that failed to leave."""
        self.ensure_one()
        mails = self.env["mail.mail"].sudo()
        owner = self.sudo().owner_user_id
        if not owner or not self.id:
            return mails
        address = email_normalize(self.sender_email or "")
        return mails.search(
            [
                ("state", "=", "exception"),
                ("mail_message_id.create_uid", "=", owner.id),
                ("email_from", "ilike", address),
            ]
        ).filtered(lambda mail: email_normalize(mail.email_from) == address)

    def action_retry_failed_mail(self):
        """Queue again the owner's mail that failed, once the account is fixed."""
        self.check_access("write")
        mails = self.env["mail.mail"].sudo()
        for account in self:
            mails |= account._failed_mail()
        mails.mark_outgoing()
        self.env.ref("mail.ir_cron_mail_scheduler_action")._trigger()
        self.sudo().activity_feedback([FAILURE_ACTIVITY], only_automated=False)

    def _store_check_result(self, result, note=None, delivery=None):
        """Tell the owner of a check someone else ran, or close the case."""
        super()._store_check_result(result, note=note, delivery=delivery)
        owner = self.sudo().owner_user_id
        if not owner:
            return
        if result.ok:
            self.sudo().activity_feedback([FAILURE_ACTIVITY], only_automated=False)
        elif self.env.user != owner:
            self._warn_owner(
                self.with_context(lang=owner.lang)._describe_check_result(result)
            )

    def _tell_owner_of_sending_failure(self, result):
        """Real mail failed through a personal account: tell its owner."""
        for account in self.sudo().filtered("owner_user_id"):
            translated = account.with_context(lang=account.owner_user_id.lang)
            advice = translated.env._(
                "The mail stays in the queue as failed. Once the "
                "account works (check it), press “Send Failed Mail "
                "Again” on the account."
            )
            account._warn_owner(
                f"{translated._describe_sending_failure(result)}\n{advice}"
            )

    def _warn_owner(self, description):
        """Put ``description`` on the owner's to-do list: one open activity."""
        self.ensure_one()
        owner = self.sudo().owner_user_id
        account = self.sudo().with_context(
            lang=owner.lang, mail_activity_quick_update=True
        )
        activity_type = self.env.ref(FAILURE_ACTIVITY)
        values = {
            "summary": account.env._("Your e-mail account needs attention"),
            "note": plaintext2html(description),
        }
        open_activity = account.activity_ids.filtered_domain(
            [("activity_type_id", "=", activity_type.id), ("user_id", "=", owner.id)]
        )[:1]
        if open_activity:
            open_activity.write({**values, "date_deadline": fields.Date.today()})
        else:
            account.activity_schedule(FAILURE_ACTIVITY, user_id=owner.id, **values)
