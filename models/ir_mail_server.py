"""The account's outgoing mail server: its handle in Odoo's routing and pickers."""

import inspect
import smtplib

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.fields import Domain

from odoo.addons.base.models.ir_mail_server import (
    IrMail_Server,
    MailDeliveryException,
    extract_rfc2822_addresses,
)

from ..smtp_engine import (
    SmtpEngineError,
    SmtpOutcome,
    Step,
    diagnose_exception,
    open_connection,
)

# Set by mail.mail.send: the queue has already chosen each mail's server
# with the per-mail permission, so the lookup that core's connection
# repeats for mail left without a server must not find an account.
QUEUE_ROUTED_KEY = "email_account_queue_routed"


def _core_arguments(method_name, args, kwargs):
    """A call's arguments by name, bound to core's signature with its defaults.

    Only read: the overrides pass the call on as they got it, whatever other
    overrides between them and core accept.
    """
    method = getattr(IrMail_Server, method_name)
    bound = inspect.signature(method).bind(None, *args, **kwargs)
    bound.apply_defaults()
    return bound.arguments


def _differences(wanted, values):
    """The ``wanted`` values that ``values`` gives otherwise (empty ones alike)."""
    return {
        name: wanted[name]
        for name in wanted.keys() & values.keys()
        if (values[name] or False) != (wanted[name] or False)
    }


# Core turns a failure into text before mail.mail marks the mail failed: the
# failure itself (step, code) and our reason wait in the transaction's cache for
# mail.mail._postprocess_sent_message, under the mail's Message-Id for a
# refused message, under CONNECTION_FAILURE for the last connection attempt
# (core marks its whole batch right after it).
SENDING_FAILURES_KEY = "email_account_sending_failures"
CONNECTION_FAILURE = "connection"


def sending_failures(env):
    """The failures of this transaction: key -> (SmtpOutcome, reason)."""
    return env.cr.cache.setdefault(SENDING_FAILURES_KEY, {})


# The step of a refused message; any other refusal is of its data.
REFUSED_STEPS = {
    smtplib.SMTPSenderRefused: Step.SENDER,
    smtplib.SMTPRecipientsRefused: Step.RECIPIENT,
}


class IrMailServer(models.Model):
    _inherit = "ir.mail_server"

    email_account_id = fields.Many2one(
        "email.account",
        readonly=True,
        copy=False,
        index="btree_not_null",
        ondelete="cascade",
        help="The e-mail account this server sends for. Its settings are "
        "managed from the account.",
    )

    _email_account_unique = models.Constraint(
        "UNIQUE(email_account_id)",
        "An e-mail account is backed by a single outgoing mail server.",
    )

    @api.depends("email_account_id.roundtrip_state", "email_account_id.trust_level")
    def _compute_display_name(self):
        # Whoever picks an account's server (a mailing, a template) sees how
        # its last delivery check went.
        result = super()._compute_display_name()
        for server in self:
            account = server.sudo().email_account_id
            if account and (summary := account._delivery_summary()):
                server.display_name = f"{server.display_name} ({summary})"
        return result

    @api.model
    def _search(self, domain, *args, **kwargs):
        # Pickers (mailings, templates) offer only the accounts the user
        # may send through; code running as superuser sees every server.
        if not self.env.su:
            domain = Domain(domain) & self._email_account_usable_domain()
        return super()._search(domain, *args, **kwargs)

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            account = self.env["email.account"].browse(vals.get("email_account_id"))
            self._check_account_values(account, vals)
        return super().create(vals_list)

    def write(self, vals):
        for server in self.sudo().filtered("email_account_id"):
            self._check_account_values(server.email_account_id, vals)
        return super().write(vals)

    def _email_account_differences(self):
        """The values of this server that differ from what its account says."""
        self.ensure_one()
        wanted = self.sudo().email_account_id._mail_server_values()
        return _differences(
            wanted, self._convert_to_write({name: self[name] for name in wanted})
        )

    @api.model
    def _check_account_values(self, account, vals):
        # No switch lets a caller skip this: the account itself only ever
        # writes the values it dictates, which pass.
        if not account:
            return
        wanted = {
            **account.sudo()._mail_server_values(),
            "smtp_pass": False,
            "owner_user_id": False,
        }
        if _differences(wanted, vals):
            raise UserError(
                self.env._(
                    "This outgoing mail server belongs to the e-mail account "
                    "“%(account)s”. Change, archive or delete the account instead.",
                    account=account.display_name,
                )
            )

    # Routing

    def _email_account_usable_domain(self):
        """Servers that are no account's, or an account the user may use."""
        if self.env.context.get(QUEUE_ROUTED_KEY):
            return Domain("email_account_id", "=", False)
        accounts = self.env["email.account"].sudo().with_context(active_test=False)
        usable = accounts.search([])._usable_by(self.env.user)
        return Domain("email_account_id", "in", [False, *usable.ids])

    def _find_mail_server_allowed_domain(self):
        return (
            super()._find_mail_server_allowed_domain()
            & self._email_account_usable_domain()
        )

    @api.model
    def _filter_mail_servers_fallback(self, servers):
        """An account is a fallback only for its own address as notifier."""
        servers = super()._filter_mail_servers_fallback(servers)
        notifications_email = (
            self.env.context.get("domain_notifications_email")
            or self._get_default_from_address()
        )
        return servers.filtered(
            lambda server: (
                not server.sudo().email_account_id
                or self._match_from_filter(notifications_email, server.from_filter)
            )
        )

    def _check_forced_mail_server(self, mail_server, allow_archived, smtp_from):
        result = super()._check_forced_mail_server(
            mail_server, allow_archived, smtp_from
        )
        # The queue (superuser) has checked each mail already; anyone else
        # must be allowed to use the account. The message names neither the
        # account nor why.
        account = mail_server.sudo().email_account_id
        if account and not self.env.su and not account._usable_by(self.env.user):
            raise UserError(self.env._("You may not send through this mail server."))
        return result

    # Connection

    def _connect__(self, *args, **kwargs):
        """Open an account's server through the engine, others as core does.

        The engine brings the decrypted credentials, the deadline and the
        certificate policy that core's connection lacks.
        """
        # Only this attempt's failure may be read back for its batch.
        sending_failures(self.env).pop(CONNECTION_FAILURE, None)
        if self._disable_send():
            return super()._connect__(*args, **kwargs)
        arguments = _core_arguments("_connect__", args, kwargs)
        mail_server_id, smtp_from = arguments["mail_server_id"], arguments["smtp_from"]
        # Core's own choice of server, made again to see whether it is an account's.
        server = self.sudo().browse(mail_server_id)
        if not mail_server_id and not arguments["host"]:
            server, smtp_from = self.sudo()._find_mail_server(smtp_from)
        # No server (None) when core falls back to the one of its configuration.
        account = server.email_account_id if server else None
        if not account:
            return super()._connect__(*args, **kwargs)
        if mail_server_id:
            self._check_forced_mail_server(
                server, arguments["allow_archived"], smtp_from
            )
        try:
            connection = open_connection(account._get_smtp_settings())
        except SmtpEngineError as exc:
            reason = account._describe_sending_failure(exc.result)
            sending_failures(self.env)[CONNECTION_FAILURE] = (exc.result, reason)
            account._record_sending_result(exc.result)
            account._tell_owner_of_sending_failure(exc.result)
            raise UserError(reason) from exc
        connection.from_filter = server.from_filter
        connection.smtp_from = smtp_from
        connection.email_account_id = account.id
        return connection

    def _prepare_email_message__(self, message, smtp_session):
        smtp_from, smtp_to_list, message = super()._prepare_email_message__(
            message, smtp_session
        )
        account_id = getattr(smtp_session, "email_account_id", None)
        if not account_id:
            return smtp_from, smtp_to_list, message
        account = self.env["email.account"].sudo().browse(account_id)
        account._set_message_sender(message)
        # Providers accept no other envelope sender from an authenticated
        # mailbox, so bounces reach the account's mailbox.
        if envelope := extract_rfc2822_addresses(account.sender_email):
            smtp_from = envelope[-1]
        return smtp_from, smtp_to_list, message

    def send_email(self, *args, **kwargs):
        """Send as core does; keep a refusal through an account for the queue.

        A refusal that is the account's (sender refused, service closing) or
        a success after a failure updates the account's status.
        """
        arguments = _core_arguments("send_email", args, kwargs)
        account_id = getattr(arguments["smtp_session"], "email_account_id", None)
        account = self.env["email.account"].sudo().browse(account_id)
        if not account:
            account = self.sudo().browse(arguments["mail_server_id"]).email_account_id
        try:
            message_id = super().send_email(*args, **kwargs)
        except MailDeliveryException as exc:
            # Core raises it while handling smtplib's exception.
            refused = exc.__context__
            if account and isinstance(refused, smtplib.SMTPException):
                step = REFUSED_STEPS.get(type(refused), Step.DATA)
                hint, code, reply = diagnose_exception(refused, step)
                result = SmtpOutcome(
                    ok=False,
                    step=step,
                    code=code,
                    reply=reply,
                    hint=hint,
                    error=type(refused).__name__,
                )
                reason = account._describe_sending_failure(result)
                failures = sending_failures(self.env)
                failures[arguments["message"]["Message-Id"]] = (result, reason)
                if step == Step.SENDER or code == 421:
                    account._record_sending_result(result)
                account._tell_owner_of_sending_failure(result)
            raise
        if account.test_state == "failed" and not self._disable_send():
            account._record_sending_result(SmtpOutcome(ok=True, step=Step.DONE))
        return message_id
