"""E-mail accounts: a sender identity with its own SMTP settings."""

import contextlib
import re
from datetime import timezone
from email.utils import make_msgid

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.fields import Domain
from odoo.tools import (
    config,
    email_normalize,
    format_datetime,
    formataddr,
    plaintext2html,
    single_email_re,
)
from odoo.tools.mail import email_split_tuples

from ..smtp_engine import SmtpSettings
from ..smtp_engine.certificate import format_fingerprint, normalize_pin
from ..smtp_engine.settings import is_valid_host
from ..tools import secret_box

# Option of the Odoo configuration file: a PEM bundle of extra certificate
# authorities to trust, for SMTP servers with certificates of a private CA.
CA_FILE_OPTION = "email_account_ca_file"
MIN_TIMEOUT = 1
MAX_TIMEOUT = 300
DEFAULT_TIMEOUT = 30

# Control characters, and the Unicode line and paragraph separators that some
# mail software folds headers at.
CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")

TEXT_FIELDS = (
    "name",
    "username",
    "sender_name",
    "sender_email",
    "smtp_host",
    "smtp_login",
)
# A secret's column: encrypted at rest (see tools.secret_box), readable only
# by administrators, never copied, never read along with other fields.
TOKEN_COLUMN = {"groups": "base.group_system", "copy": False, "prefetch": False}
SECRET_FIELDS = {"password": "password_token", "smtp_password": "smtp_password_token"}
# The account's encryption choice in the terms of ir.mail_server: the
# engine always verifies the certificate, hence the strict variants.
MAIL_SERVER_ENCRYPTION = {
    "none": "none",
    "starttls": "starttls_strict",
    "ssl": "ssl_strict",
}
# A stored password goes only where these say: changing one drops it.
SECRET_BINDING_FIELDS = (
    "smtp_host",
    "smtp_port",
    "smtp_encryption",
    "smtp_pinned_certificate",
    "username",
    "smtp_login",
)


class EmailAccount(models.Model):
    _name = "email.account"
    _description = "Email Account"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "name, id"
    _check_company_auto = True

    name = fields.Char(
        string="Account Name",
        required=True,
        tracking=True,
        help="The name that identifies this account when you choose a sender.",
    )
    username = fields.Char(
        tracking=True,
        help="The user name of the mailbox, usually its e-mail address.",
    )
    password = fields.Char(
        compute="_compute_password",
        inverse="_inverse_password",
        groups="base.group_user",
        help="The password of the mailbox. It is stored encrypted and never "
        "shown again: leave it empty to keep the current one.",
    )
    password_set = fields.Boolean(
        compute="_compute_password_set", string="Password Stored"
    )
    sender_name = fields.Char(
        tracking=True,
        help="The name recipients see as the sender of messages from this account.",
    )
    sender_email = fields.Char(
        string="Sender Email Address",
        required=True,
        tracking=True,
        help="The address of this account. Messages from this address leave "
        "through this account, and the test message is sent to it.",
    )
    smtp_host = fields.Char(
        string="SMTP Server",
        required=True,
        tracking=True,
        help="Host name or IP address of the SMTP server for outgoing mail.",
    )
    smtp_port = fields.Integer(
        string="SMTP Port",
        required=True,
        default=25,
        tracking=True,
        help="Usually 587 with STARTTLS, 465 with SSL/TLS, 25 without encryption.",
    )
    smtp_encryption = fields.Selection(
        selection=[("none", "None"), ("starttls", "STARTTLS"), ("ssl", "SSL/TLS")],
        string="Connection Security",
        required=True,
        default="none",
        tracking=True,
        help="None: the session is in clear text.\n"
        "STARTTLS: the session starts in clear text and switches to TLS "
        "before logging in (usually port 587).\n"
        "SSL/TLS: the session is encrypted from the first byte (usually "
        "port 465).\n"
        "The server's certificate and host name are always verified.",
    )
    smtp_timeout = fields.Integer(
        string="SMTP Timeout",
        required=True,
        default=DEFAULT_TIMEOUT,
        tracking=True,
        help="Seconds after which an attempt to talk to the SMTP server is "
        "considered failed, for the test and for real sending.",
    )
    smtp_pinned_certificate = fields.Char(
        string="Trusted Certificate",
        copy=False,
        tracking=True,
        help="The SHA-256 fingerprint of the one server certificate this "
        "account accepts although no trusted authority issued it (a "
        "self-signed certificate, for example). Set it from a failed check "
        "with “Trust This Certificate”; any other certificate is refused.",
    )
    smtp_auth_required = fields.Boolean(
        string="Server Requires Authentication",
        tracking=True,
        help="Tick it if the server requires the client to log in before "
        "sending a message.",
    )
    smtp_login = fields.Char(
        string="Separate Login",
        tracking=True,
        help="Only if the server needs other credentials than the account's "
        "user name and password: the login to use instead.",
    )
    smtp_password = fields.Char(
        string="Separate Password",
        compute="_compute_password",
        inverse="_inverse_password",
        groups="base.group_user",
        help="The password that goes with the separate login. It is stored "
        "encrypted and never shown again.",
    )
    smtp_password_set = fields.Boolean(
        compute="_compute_password_set", string="Separate Password Stored"
    )
    password_token = fields.Char(**TOKEN_COLUMN)
    smtp_password_token = fields.Char(**TOKEN_COLUMN)
    company_id = fields.Many2one(
        "res.company",
        default=lambda self: self.env.company,
        index=True,
        tracking=True,
        help="Leave empty to share the account between all companies.",
    )
    active = fields.Boolean(default=True, tracking=True)
    allowed_senders = fields.Selection(
        selection=[
            ("account_users", "Email Accounts users"),
            ("internal_users", "All internal users"),
            ("owner", "Its owner only"),
        ],
        string="Who May Send",
        required=True,
        default="account_users",
        tracking=True,
        help="Email Accounts users: only the members of the group Email "
        "Accounts / User of the account's companies send through it.\n"
        "All internal users: every internal user of the account's companies.\n"
        "Its owner only: a personal account, for its owner's own mail.\n"
        "Anybody else's mail from this address leaves as if the account did "
        "not exist.",
    )
    allow_system_mail = fields.Boolean(
        string="Odoo's System Mail",
        tracking=True,
        help="Also send the mail that Odoo sends on nobody's behalf "
        "(notifications, digests, scheduled jobs) through this account, "
        "for example for the company's notifications address.",
    )
    mail_server_id = fields.Many2one(
        "ir.mail_server",
        string="Outgoing Mail Server",
        readonly=True,
        copy=False,
        index="btree_not_null",
        ondelete="set null",
        groups="base.group_system",
        help="The outgoing mail server through which Odoo sends the "
        "messages of this account. It follows the account: change the "
        "account, not the server.",
    )
    test_state = fields.Selection(
        selection=[("untested", "Untested"), ("ok", "Working"), ("failed", "Failed")],
        string="Test Status",
        required=True,
        default="untested",
        copy=False,
        readonly=True,
    )
    test_date = fields.Datetime(string="Tested On", copy=False, readonly=True)
    test_user_id = fields.Many2one(
        "res.users", string="Tested By", copy=False, readonly=True
    )
    test_step = fields.Char(string="Step Reached", copy=False, readonly=True)
    test_message = fields.Text(string="Test Result", copy=False, readonly=True)
    test_certificate_fingerprint = fields.Char(
        string="Certificate Seen",
        copy=False,
        readonly=True,
        help="The SHA-256 fingerprint of the certificate that the server "
        "presented when the last check refused it.",
    )
    test_transcript = fields.Text(
        string="SMTP Transcript",
        copy=False,
        readonly=True,
        groups="email_account.group_email_account_manager",
        help="The dialogue with the server during the last test; "
        "credentials are masked.",
    )

    def _compute_password(self):
        # Write-only: a stored password never travels back to a client.
        self.password = False
        self.smtp_password = False

    def _inverse_password(self):
        for field_name, token_field in SECRET_FIELDS.items():
            for account in self.filtered(field_name):
                try:
                    token = secret_box.encrypt(account[field_name])
                except secret_box.SecretKeyError as exc:
                    raise account._secret_key_user_error(exc) from exc
                account.sudo()[token_field] = token

    @api.depends("password_token", "smtp_password_token")
    def _compute_password_set(self):
        # From the stored tokens, never by decrypting: a missing key must
        # not make a stored password look absent.
        for account in self:
            stored = account.sudo()
            account.password_set = bool(stored.password_token)
            account.smtp_password_set = bool(stored.smtp_password_token)

    @api.constrains(*TEXT_FIELDS)
    def _check_control_characters(self):
        labels = self._fields
        for account in self:
            for field_name in TEXT_FIELDS:
                if CONTROL_CHARS.search(account[field_name] or ""):
                    raise ValidationError(
                        self.env._(
                            "The field “%(field)s” contains control characters "
                            "(such as a line break or a tab). Remove them.",
                            field=labels[field_name]._description_string(self.env),
                        )
                    )

    @api.constrains("sender_email")
    def _check_sender_email(self):
        for account in self:
            if not single_email_re.match(account.sender_email or ""):
                raise ValidationError(
                    self.env._(
                        "“%(email)s” is not a valid e-mail address. Enter the "
                        "sender address in the form name@example.com.",
                        email=account.sender_email or "",
                    )
                )

    @api.constrains("smtp_host")
    def _check_smtp_host(self):
        for account in self:
            host = (account.smtp_host or "").strip()
            if not host:
                raise ValidationError(self.env._("Enter the SMTP server."))
            if not is_valid_host(host):
                raise ValidationError(
                    self.env._(
                        "“%(host)s” is not a valid host name or IP address for "
                        "the SMTP server.",
                        host=account.smtp_host,
                    )
                )

    @api.constrains("smtp_port")
    def _check_smtp_port(self):
        for account in self:
            if not 1 <= account.smtp_port <= 65535:
                raise ValidationError(
                    self.env._(
                        "The SMTP port must be between 1 and 65535 "
                        "(you entered %(port)s).",
                        port=account.smtp_port,
                    )
                )

    @api.constrains("smtp_timeout")
    def _check_smtp_timeout(self):
        for account in self:
            if not MIN_TIMEOUT <= account.smtp_timeout <= MAX_TIMEOUT:
                raise ValidationError(
                    self.env._(
                        "The SMTP timeout must be between %(min)s and %(max)s "
                        "seconds (you entered %(timeout)s).",
                        min=MIN_TIMEOUT,
                        max=MAX_TIMEOUT,
                        timeout=account.smtp_timeout,
                    )
                )

    @api.constrains("smtp_pinned_certificate")
    def _check_smtp_pinned_certificate(self):
        for account in self:
            try:
                normalize_pin(account.smtp_pinned_certificate)
            except ValueError as exc:
                raise ValidationError(
                    self.env._(
                        "“%(fingerprint)s” is not a SHA-256 fingerprint: it has "
                        "64 hexadecimal digits, usually in pairs separated by "
                        "colons.",
                        fingerprint=account.smtp_pinned_certificate,
                    )
                ) from exc

    @api.onchange("smtp_encryption")
    def _onchange_smtp_encryption(self):
        standard_ports = {"none": 25, "starttls": 587, "ssl": 465}
        if self.smtp_port in standard_ports.values():
            self.smtp_port = standard_ports[self.smtp_encryption]

    @api.onchange(*SECRET_BINDING_FIELDS)
    def _onchange_secret_binding(self):
        stored = self._origin
        if not (stored and (stored.password_set or stored.smtp_password_set)):
            return None
        # As saving will compare: normalized, and empty values alike.
        binding = self._secret_binding_fields()
        vals = self._normalize_vals({name: self[name] for name in binding})
        if not stored._moved_away(vals, binding):
            return None
        return {
            "warning": {
                "title": self.env._("The stored password will be removed"),
                "message": self.env._(
                    "A stored password is only ever sent to the server, port, "
                    "security and login it was entered for. Saving this change "
                    "removes it: enter the password again before you save."
                ),
                "type": "notification",
            }
        }

    @api.model
    def _secret_binding_fields(self):
        """Hook: the fields whose change drops a stored password."""
        return SECRET_BINDING_FIELDS

    def _forget_clear_secrets(self):
        # The ORM keeps a written value in its cache, and the web client
        # reads the record back in the same request after saving: drop the
        # clear text so that what goes back is the computed empty value.
        self.invalidate_recordset(list(SECRET_FIELDS))

    @api.model
    def _normalize_vals(self, vals):
        vals = dict(vals)
        for field_name in ("smtp_host", "sender_email", "smtp_login", "username"):
            if isinstance(vals.get(field_name), str):
                vals[field_name] = vals[field_name].strip()
        # A malformed pin or address stays as typed, for the constraint to
        # show: email_normalize would pick an address out of garbage.
        with contextlib.suppress(ValueError):
            if pin := vals.get("smtp_pinned_certificate"):
                vals["smtp_pinned_certificate"] = format_fingerprint(normalize_pin(pin))
        sender_email = vals.get("sender_email")
        if isinstance(sender_email, str) and single_email_re.match(sender_email):
            vals["sender_email"] = email_normalize(sender_email)
        return vals

    def _moved_away(self, vals, binding_fields):
        """The accounts that ``vals`` moves to other ``binding_fields``."""
        changed = [name for name in binding_fields if name in vals]
        return self.filtered(
            lambda account: any(
                (account[name] or False) != (vals[name] or False) for name in changed
            )
        )

    @api.model_create_multi
    def create(self, vals_list):
        accounts = super().create([self._normalize_vals(vals) for vals in vals_list])
        accounts._forget_clear_secrets()
        accounts._sync_mail_server()
        return accounts

    def write(self, vals):
        vals = self._normalize_vals(vals)
        moved = self._moved_secrets(vals)
        result = super().write(vals)
        for accounts, columns, cleared, note in moved:
            if accounts:
                accounts._forget_secrets(columns, note, cleared=cleared)
        if SECRET_FIELDS.keys() & vals.keys():
            self._forget_clear_secrets()
        self._sync_mail_server()
        return result

    def _moved_secrets(self, vals):
        """What ``vals`` sends elsewhere, forgotten in this order once written.

        Each item is ``(accounts, columns, cleared, note)`` for _forget_secrets.
        """
        moved = self._moved_away(vals, self._secret_binding_fields()).filtered(
            lambda account: account.password_set or account.smtp_password_set
        )
        columns = [token for name, token in SECRET_FIELDS.items() if not vals.get(name)]
        note = self.env._(
            "The stored password was removed because the server, port, "
            "security or login changed. Enter it again."
        )
        return [(moved, columns, (), note)]

    def copy_data(self, default=None):
        vals_list = super().copy_data(default=default)
        for account, vals in zip(self, vals_list, strict=True):
            if "name" not in (default or {}):
                vals["name"] = self.env._("%s (copy)", account.name)
        return vals_list

    def action_remove_password(self):
        self._forget_secrets(
            ["password_token"], self.env._("The stored password was removed.")
        )

    def action_remove_smtp_password(self):
        self._forget_secrets(
            ["smtp_password_token"],
            self.env._("The stored separate password was removed."),
        )

    def action_trust_certificate(self):
        """Accept from now on the certificate that the last check refused."""
        for account in self:
            if not account.test_certificate_fingerprint:
                raise UserError(
                    self.env._(
                        "Check the account first: the certificate to trust is "
                        "the one its server presents."
                    )
                )
            account.smtp_pinned_certificate = account.test_certificate_fingerprint

    def _forget_secrets(self, columns, note, cleared=()):
        """Empty ``columns`` and ``cleared`` where a column is set; post ``note``."""
        self.check_access("write")
        for account in self:
            stored = account.sudo()
            if any(stored[column] for column in columns):
                stored.write(dict.fromkeys((*columns, *cleared), False))
                account.message_post(body=note, subtype_xmlid="mail.mt_note")

    def _secret_columns(self):
        """The columns that hold secrets encrypted with the addon's key."""
        return list(SECRET_FIELDS.values())

    def _register_hook(self):
        # At start rather than at the first message: a refused or missing
        # key then shows in the log before anyone needs a password.
        super()._register_hook()
        stored = Domain.OR(
            Domain(column, "!=", False) for column in self._secret_columns()
        )
        count = (
            self.sudo().with_context(active_test=False).search_count(stored, limit=1)
        )
        secret_box.check_keys(secrets_stored=bool(count))

    def _get_smtp_settings(self):
        """The engine's view of this account, secrets decrypted."""
        self.ensure_one()
        try:
            password = secret_box.decrypt(self.sudo().password_token)
            login_password = secret_box.decrypt(self.sudo().smtp_password_token)
        except secret_box.SecretKeyError as exc:
            raise self._secret_key_user_error(exc) from exc
        return SmtpSettings(
            host=self.smtp_host,
            port=self.smtp_port,
            encryption=self.smtp_encryption,
            timeout=float(self.smtp_timeout),
            auth_required=self.smtp_auth_required,
            username=self.username or "",
            password=password,
            login=self.smtp_login or "",
            login_password=login_password,
            sender_name=self.sender_name or "",
            sender_email=self.sender_email,
            pinned_certificate=self.smtp_pinned_certificate or "",
            cafile=config.get(CA_FILE_OPTION) or None,
        )

    def _secret_key_user_error(self, error):
        places = {
            "option": secret_box.KEY_OPTION,
            "variable": secret_box.KEY_ENVIRON,
            "path": secret_box.key_file_path(),
        }
        if isinstance(error, secret_box.KeyMissingError):
            message = self.env._(
                "The encryption key of the e-mail accounts is missing, so the "
                "stored passwords cannot be decrypted. Restore the key from your "
                "backup: it is looked for in the option “%(option)s” of the Odoo "
                "configuration file, then in the environment variable "
                "%(variable)s, then in the file %(path)s.",
                **places,
            )
        elif isinstance(error, secret_box.KeyFileRefusedError):
            message = self.env._(
                "The key file %(path)s of the e-mail accounts is refused: other "
                "users may read or change it, or it does not belong to the user "
                "Odoo runs as. Make it belong to that user and readable by it "
                "only (chmod 600 %(path)s).",
                path=error.path,
            )
        elif isinstance(error, secret_box.InvalidKeyError):
            message = self.env._(
                "An encryption key of the e-mail accounts is not a valid key. "
                "Check the option “%(option)s” of the Odoo configuration file, "
                "the environment variable %(variable)s or the file %(path)s; "
                "the server log says which key is wrong.",
                **places,
            )
        else:
            message = self.env._(
                "The stored password of the account “%(account)s” cannot "
                "be decrypted with this server's key. Enter the password "
                "again.",
                account=self.display_name,
            )
        return UserError(message)

    def _describe_check_result(self, result):
        """One translated sentence: what happened, where, and what to do."""
        if result.ok:
            if result.queue_id:
                return self.env._(
                    "The test message was sent to %(recipient)s and accepted by "
                    "the server (queue id %(queue_id)s).",
                    recipient=result.recipient,
                    queue_id=result.queue_id,
                )
            return self.env._(
                "The test message was sent to %(recipient)s and accepted by the "
                "server.",
                recipient=result.recipient,
            )
        step = result.step_label(translate=self.env._)
        headline = self.env._("The test failed at the step “%(step)s”.", step=step)
        return self._describe_failure(result, headline)

    def _describe_failure(self, result, headline):
        """``headline``, then the server's answer, the hint, the certificate."""
        answer = result.code and self.env._(
            "The server answered: %(code)s %(reply)s",
            code=result.code,
            reply=result.reply,
        )
        hint = result.hint_text(translate=self.env._)
        certificate = result.certificate and self._describe_certificate(
            result.certificate
        )
        return "\n".join(filter(None, (headline, answer, hint, certificate)))

    def _describe_certificate(self, certificate):
        def date(value):
            naive_utc = value and value.astimezone(timezone.utc).replace(tzinfo=None)
            return format_datetime(self.env, naive_utc, dt_format="medium") or "?"

        return self.env._(
            "The server presented this certificate:\n"
            "Subject: %(subject)s\n"
            "Issuer: %(issuer)s\n"
            "Valid from %(not_before)s to %(not_after)s\n"
            "SHA-256 fingerprint: %(fingerprint)s",
            subject=certificate.subject or "?",
            issuer=certificate.issuer or "?",
            not_before=date(certificate.not_before),
            not_after=date(certificate.not_after),
            fingerprint=certificate.fingerprint,
        )

    def _store_check_result(self, result, note=None, delivery=None):
        """Store the outcome of a check; ``delivery``: what followed it."""
        self.ensure_one()
        message = self._describe_check_result(result)
        self._write_status(result, f"{message}\n{note}" if note else message)
        self.message_post(
            body=plaintext2html("\n\n".join(self._check_story())),
            subject=self.env._("Account settings check"),
            subtype_xmlid="mail.mt_note",
        )

    def _write_status(self, result, message):
        self.sudo().write(
            {
                "test_state": "ok" if result.ok else "failed",
                "test_date": fields.Datetime.now(),
                "test_user_id": self.env.uid,
                "test_step": result.step_label(translate=self.env._),
                "test_message": message,
                "test_transcript": result.transcript or False,
                "test_certificate_fingerprint": result.certificate
                and result.certificate.fingerprint,
            }
        )

    def _check_story(self):
        """The texts that tell the last check of the account, in order."""
        self.ensure_one()
        return [self.test_message]

    def _check_notification(self):
        failed = self.filtered(lambda account: account.test_state != "ok")
        if len(self) == 1:
            if failed:
                title = self.env._("The account settings check failed")
            else:
                title = self.env._("Test message sent")
            message = "\n\n".join(self._check_story())
        else:
            title = self.env._(
                "%(ok)s of %(total)s accounts work",
                ok=len(self) - len(failed),
                total=len(self),
            )
            message = "\n".join(
                self.env._(
                    "%(account)s: %(message)s",
                    account=account.display_name,
                    message=account.test_message,
                )
                for account in failed
            )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": title,
                "message": message,
                "type": "danger" if failed else "success",
                "sticky": bool(failed),
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def _mail_server_values(self):
        """What the account's server shows; it refuses any other value.

        Only for display and routing: connections use the account's settings.
        """
        self.ensure_one()
        login = (self.smtp_login or self.username) if self.smtp_auth_required else ""
        return {
            "name": self.name,
            "from_filter": self.sender_email,
            "smtp_host": self.smtp_host,
            "smtp_port": self.smtp_port,
            "smtp_encryption": MAIL_SERVER_ENCRYPTION[self.smtp_encryption],
            "smtp_user": login or False,
            "active": self.active,
        }

    def _sync_mail_server(self):
        servers = self.env["ir.mail_server"].sudo().with_context(active_test=False)
        for account in self.sudo():
            server = account.mail_server_id
            if not server:
                account.mail_server_id = servers.create(
                    {**account._mail_server_values(), "email_account_id": account.id}
                )
            # Only what changed: archiving a server runs core's usage checks,
            # which must not block an unrelated change of an archived account.
            elif changes := server._email_account_differences():
                server.write(changes)

    def _usable_by(self, user):
        """The accounts of ``self`` that ``user`` may send through.

        The rule: the account is shared or of one of the user's companies,
        and the user is an Email Accounts user, or an internal user where the
        account allows all of them, or the account's owner (see _owned_by).
        The superuser or an empty ``user`` stands for Odoo's system mail,
        which goes only through the accounts that allow it.
        """
        accounts = self.sudo()
        if not user or user._is_superuser():
            return self.browse(accounts.filtered("allow_system_mail").ids)
        companies = user.sudo().company_ids
        if user.has_group("email_account.group_email_account_user"):
            allowed = {"account_users", "internal_users"}
        else:
            allowed = {"internal_users"} if user._is_internal() else set()
        owned = set(accounts._owned_by(user).ids)

        def usable(account):
            if account.company_id and account.company_id not in companies:
                return False
            return account.allowed_senders in allowed or account.id in owned

        return self.browse(accounts.filtered(usable).ids)

    def _owned_by(self, user):
        """Hook: the accounts of ``self`` that ``user`` owns; none here."""
        return self.browse()

    def _set_message_sender(self, message):
        """Make ``message`` (an ``EmailMessage``) leave as this account.

        Another From becomes the Reply-To if there is none, so that replies
        still reach whoever wrote the message.
        """
        self.ensure_one()
        pairs = email_split_tuples(message["From"] or "")
        name, address = pairs[0] if pairs else ("", "")
        if email_normalize(address) == email_normalize(self.sender_email):
            if name or not self.sender_name:
                return
        elif message["From"] and not message["Reply-To"]:
            message["Reply-To"] = message["From"]
        if message["From"]:
            message.replace_header("From", self._get_formatted_sender())
        else:
            message["From"] = self._get_formatted_sender()

    def _describe_sending_failure(self, result):
        self.ensure_one()
        headline = self.env._(
            "Sending through the e-mail account “%(account)s” failed at the "
            "step “%(step)s”.",
            account=self.display_name,
            step=result.step_label(translate=self.env._),
        )
        return self._describe_failure(result, headline)

    # Sending API, for code that chooses an account or sends a message it
    # built itself (mail from an account's address already goes through it).

    @api.model
    def _find_account(self, email_from=None, company=None, user=None):
        """Return the account to send with, in the caller's environment.

        ``email_from`` defaults to ``user``'s address, else any address;
        ``company`` keeps its accounts and the shared ones, preferring its
        own; ``user`` keeps the accounts they may send through. An empty
        recordset when no active account fits.
        """
        if not email_from and user:
            email_from = user.email
        domain = []
        if email_from:
            if not (address := email_normalize(email_from)):
                return self.browse()
            domain.append(("sender_email", "=", address))
        if company:
            domain.append(("company_id", "in", [company.id, False]))
        accounts = self.sudo().search(domain)
        if user:
            accounts = accounts._usable_by(user)
        best = accounts.sorted(lambda account: not account.company_id)[:1]
        return self.browse(best.ids)

    def _get_formatted_sender(self):
        """Return the sender as it appears in From: ``"Name" <address>``."""
        self.ensure_one()
        return formataddr((self.sender_name or "", self.sender_email))

    def _send_email_message(self, message):
        """Send a prepared ``EmailMessage`` to its To, Cc and Bcc.

        Return its Message-Id. Raise like ``ir.mail_server.send_email``:
        ``UserError`` if the connection fails, ``MailDeliveryException`` if
        the message is refused.
        """
        self.ensure_one()
        self.check_access("read")
        if not self.active:
            raise UserError(
                self.env._(
                    "The e-mail account “%(account)s” is archived: restore it "
                    "to send through it.",
                    account=self.display_name,
                )
            )
        if not message["From"]:
            message["From"] = self._get_formatted_sender()
        if not message["Message-Id"]:
            domain = self.sender_email.rpartition("@")[2]
            message["Message-Id"] = make_msgid(domain=domain)
        return self.env["ir.mail_server"].send_email(
            message, mail_server_id=self.sudo().mail_server_id.id
        )
