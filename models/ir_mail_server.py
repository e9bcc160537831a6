"""Outgoing mail servers that stand for e-mail accounts.

Every active ``email.account`` is backed by one ``ir.mail_server``, so that
the whole of Odoo's mail stack (the ``mail.mail`` queue, the composer, the
chatter, mass mailing) sends through the account without a second sending
path. The account is the only place where the settings live:

* the server is created, updated, archived and deleted by the account (see
  ``email.account._sync_mail_server``); direct edits of its settings are
  refused with a message that points to the account;
* its ``from_filter`` is the account's sender address, so that core's
  ``_find_mail_server`` routes every message from that address to it; among
  servers that would match the address, the account's server goes first, and
  it is never used as a fallback for other senders;
* it never stores a password: ``_connect__`` opens the connection with the
  account's engine settings, whose secrets are decrypted at that moment, and
  which also carry the account's TLS policy and timeout (core's connection
  uses a fixed 60 s);
* the display name of the account is applied to messages that leave through
  it without a name of their own, and a message forced through the account
  from another address leaves as the account (the original sender becomes
  the Reply-To); the envelope sender is always the account's address, as
  mail providers accept no other for an authenticated mailbox, so bounces
  reach the account's mailbox rather than Odoo's bounce alias;
* users see, pick and use only the servers of accounts of their companies
  (an ``ir.rule`` on the stored ``email_account_company_id``; routing checks
  are in ``mail.mail._filter_mail_mail_servers``).
"""

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.fields import Domain
from odoo.tools import email_normalize

from odoo.addons.base.models.ir_mail_server import extract_rfc2822_addresses

from ..smtp_engine import SmtpEngineError, open_connection

# Set by the account when it writes its own server; nothing else should.
SYNC_CONTEXT_KEY = "email_account_sync"

# What the account decides; the rest (priority, maximum size...) stays free.
MANAGED_FIELDS = {
    "name",
    "from_filter",
    "smtp_host",
    "smtp_port",
    "smtp_encryption",
    "smtp_authentication",
    "smtp_user",
    "smtp_pass",
    "smtp_ssl_certificate",
    "smtp_ssl_private_key",
    "owner_user_id",
    "active",
    "email_account_id",
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
    email_account_company_id = fields.Many2one(
        related="email_account_id.company_id",
        string="Email Account Company",
        store=True,
        index="btree_not_null",
    )

    _email_account_unique = models.Constraint(
        "UNIQUE(email_account_id)",
        "An e-mail account is backed by a single outgoing mail server.",
    )

    @api.constrains("smtp_pass", "email_account_id")
    def _check_email_account_password(self):
        # The account keeps its password encrypted; a copy in clear text here
        # would defeat that.
        for server in self.sudo():
            if server.email_account_id and server.smtp_pass:
                raise ValidationError(
                    self.env._(
                        "The outgoing mail server “%(server)s” of an e-mail "
                        "account cannot store a password. Set the password on "
                        "the account “%(account)s”.",
                        server=server.name,
                        account=server.email_account_id.name,
                    )
                )

    @api.model_create_multi
    def create(self, vals_list):
        if not self.env.context.get(SYNC_CONTEXT_KEY) and any(
            vals.get("email_account_id") for vals in vals_list
        ):
            raise UserError(
                self.env._(
                    "The outgoing mail server of an e-mail account is created "
                    "with the account. Create an e-mail account instead."
                )
            )
        return super().create(vals_list)

    def write(self, vals):
        if not self.env.context.get(SYNC_CONTEXT_KEY) and MANAGED_FIELDS.intersection(
            vals
        ):
            self._check_not_managed()
        return super().write(vals)

    def unlink(self):
        if not self.env.context.get(SYNC_CONTEXT_KEY):
            self._check_not_managed()
        return super().unlink()

    def _check_not_managed(self):
        managed = self.sudo().filtered("email_account_id")[:1]
        if managed:
            raise UserError(
                self.env._(
                    "The outgoing mail server “%(server)s” belongs to the e-mail "
                    "account “%(account)s”. Change, archive or delete the "
                    "account instead.",
                    server=managed.name,
                    account=managed.email_account_id.name,
                )
            )

    # Routing

    def _find_mail_server_allowed_domain(self):
        """Leave out the accounts of other companies than the sender's.

        Only used when no list of servers is given, i.e. for a direct
        ``send_email``; the mail queue filters per message instead (see
        ``mail.mail._filter_mail_mail_servers``).
        """
        domain = super()._find_mail_server_allowed_domain()
        user = self.env.user
        if user._is_superuser():
            return domain
        return domain & (
            Domain("email_account_id", "=", False)
            | Domain("email_account_company_id", "in", user.company_ids.ids + [False])
        )

    def _find_mail_server(self, email_from, mail_servers=None):
        if mail_servers is None:
            mail_servers = self.sudo().search(
                self._find_mail_server_allowed_domain(), order="sequence"
            )
        # The account's address is its own: its server goes before any other
        # server configured for the same address.
        managed = mail_servers.filtered(lambda server: server.sudo().email_account_id)
        return super()._find_mail_server(email_from, managed + (mail_servers - managed))

    @api.model
    def _filter_mail_servers_fallback(self, servers):
        """Never relay another sender's mail through an account.

        An account's server stays a candidate only for the notification
        address, when that address is the account's own.
        """
        servers = super()._filter_mail_servers_fallback(servers)
        notifications_email = self.env.context.get(
            "domain_notifications_email"
        ) or email_normalize(self._get_default_from_address())
        return servers.filtered(
            lambda server: (
                not server.sudo().email_account_id
                or (
                    notifications_email
                    and email_normalize(server.from_filter)
                    == email_normalize(notifications_email)
                )
            )
        )

    # Connection

    def _connect__(
        self,
        host=None,
        port=None,
        user=None,
        password=None,
        encryption=None,
        smtp_from=None,
        ssl_certificate=None,
        ssl_private_key=None,
        smtp_debug=False,
        mail_server_id=None,
        allow_archived=False,
    ):
        """Connect through the account's engine when the server is an account's.

        The connection gets the attributes core's connection has
        (``from_filter``, ``smtp_from``) and the id of the account, which
        ``_prepare_email_message__`` uses to set the sender.
        """
        mail_server = self.env["ir.mail_server"]
        account_smtp_from = smtp_from
        if not self._disable_send():
            if mail_server_id:
                mail_server = self.sudo().browse(mail_server_id)
            elif not host:
                found, found_from = self.sudo()._find_mail_server(smtp_from)
                if found:
                    mail_server, account_smtp_from = found, found_from
        account = mail_server.email_account_id
        if not account:
            return super()._connect__(
                host=host,
                port=port,
                user=user,
                password=password,
                encryption=encryption,
                smtp_from=smtp_from,
                ssl_certificate=ssl_certificate,
                ssl_private_key=ssl_private_key,
                smtp_debug=smtp_debug,
                mail_server_id=mail_server_id,
                allow_archived=allow_archived,
            )
        if mail_server_id:
            self._check_forced_mail_server(mail_server, allow_archived, smtp_from)
        # Whether this sender may use the account was decided by the routing
        # (see mail.mail._filter_mail_mail_servers); the queue may run as a
        # user who cannot read accounts.
        account = account.sudo()
        settings = account._get_smtp_settings()
        try:
            connection = open_connection(settings)
        except SmtpEngineError as exc:
            raise UserError(account._describe_sending_failure(exc.result)) from exc
        connection.from_filter = mail_server.from_filter
        connection.smtp_from = account_smtp_from
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
        # The envelope sender is the account too: the server accepts no other.
        envelope = extract_rfc2822_addresses(account.sender_email)
        if envelope:
            smtp_from = envelope[-1]
        return smtp_from, smtp_to_list, message
