"""E-mail accounts: a sender identity with its own SMTP settings.

An account is what the original form called an "e-mail provider / account":
who the mail comes from (sender name and address) and how it leaves (SMTP
host, port, security, timeout and credentials). The SMTP dialogue itself is
done by the Odoo-free ``smtp_engine`` package; this model stores the settings,
keeps the passwords encrypted (see ``tools.secret_box``), runs the engine and
translates what it reports.
"""

import contextlib
import dataclasses
import ipaddress
import logging
import re
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import timedelta, timezone
from email.utils import make_msgid

from odoo import Command, api, fields, models, modules
from odoo.exceptions import UserError, ValidationError
from odoo.tools import (
    SQL,
    config,
    email_normalize,
    format_datetime,
    formataddr,
    plaintext2html,
    single_email_re,
)
from odoo.tools.mail import email_split_tuples

from ..smtp_engine import (
    MESSAGE_TEXTS,
    CheckResult,
    SmtpSettings,
    Step,
    send_test_message,
)
from ..smtp_engine.certificate import format_fingerprint, normalize_pin
from ..tools import secret_box

_logger = logging.getLogger(__name__)

# Option of the Odoo configuration file: a PEM bundle of extra certificate
# authorities to trust, for SMTP servers with certificates of a private CA.
CA_FILE_OPTION = "email_account_ca_file"
MIN_TIMEOUT = 1
MAX_TIMEOUT = 300
DEFAULT_TIMEOUT = 30
# Checks in the background: the network waits run in parallel threads, at
# most this many at once (see _cron_run_checks).
MAX_PARALLEL_CHECKS = 50
# A check answers within the request only if its time-out is at most this
# many seconds, and at most this share of the worker's time limit.
INLINE_CHECK_TIMEOUT = 30
INLINE_CHECK_SHARE = 0.25
# Share of the cron worker's time limit that one run of checks may use; the
# rest is left to the other jobs the worker runs in the same round.
BACKGROUND_CHECK_SHARE = 0.5
# Without a time limit (a single-process server), one run stops after this.
DEFAULT_CHECK_BUDGET = 60
# A progress notification at most this often per request, in seconds.
PROGRESS_INTERVAL = 3.0

# Control characters, and the Unicode line and paragraph separators that some
# mail software folds headers at.
_CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")

TEXT_FIELDS = (
    "name",
    "username",
    "sender_name",
    "sender_email",
    "smtp_host",
    "smtp_login",
)
SECRET_FIELDS = {
    "password": "password_token",
    "smtp_password": "smtp_password_token",
}
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


def is_valid_host(host):
    """A host name (IDNA allowed) or an IPv4/IPv6 address."""
    with contextlib.suppress(ValueError):
        return bool(ipaddress.ip_address(host))
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    ascii_host = ascii_host.rstrip(".")
    return 0 < len(ascii_host) <= 253 and all(
        _HOSTNAME_LABEL.match(label) for label in ascii_host.split(".")
    )


class EmailAccount(models.Model):
    _name = "email.account"
    _description = "Email Account"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "name, id"
    _check_company_auto = True

    # Account
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
        groups="email_account.group_email_account_manager",
        help="The password of the mailbox. It is stored encrypted and never "
        "shown again: leave it empty to keep the current one.",
    )
    password_set = fields.Boolean(
        compute="_compute_password_set",
        string="Password Stored",
    )
    # Sender
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
    # Server
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
        selection=[
            ("none", "None"),
            ("starttls", "STARTTLS"),
            ("ssl", "SSL/TLS"),
        ],
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
    # Authentication
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
        groups="email_account.group_email_account_manager",
        help="The password that goes with the separate login. It is stored "
        "encrypted and never shown again.",
    )
    smtp_password_set = fields.Boolean(
        compute="_compute_password_set",
        string="Separate Password Stored",
    )
    # Encrypted at rest, readable only by the superuser (see tools.secret_box).
    password_token = fields.Char(
        groups="base.group_system",
        copy=False,
        prefetch=False,
    )
    smtp_password_token = fields.Char(
        groups="base.group_system",
        copy=False,
        prefetch=False,
    )
    company_id = fields.Many2one(
        "res.company",
        default=lambda self: self.env.company,
        index=True,
        tracking=True,
        help="Leave empty to share the account between all companies.",
    )
    active = fields.Boolean(default=True, tracking=True)
    # Who may send through the account (see _usable_by)
    allowed_senders = fields.Selection(
        selection=[
            ("account_users", "Email Accounts users"),
            ("internal_users", "All internal users"),
        ],
        string="Who May Send",
        required=True,
        default="account_users",
        tracking=True,
        help="Email Accounts users: only the members of the group Email "
        "Accounts / User of the account's companies send through it.\n"
        "All internal users: every internal user of the account's companies.\n"
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
    # Last test
    test_state = fields.Selection(
        selection=[
            ("untested", "Untested"),
            ("ok", "Working"),
            ("failed", "Failed"),
        ],
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
    # -- Checks in the background and health watch: fields ----------------
    health_watch = fields.Boolean(
        default=True,
        tracking=True,
        help="Check this account every day with a real test message, so that "
        "its status stays current; its managers get an activity when it "
        "stops working.",
    )
    check_state = fields.Selection(
        selection=[
            ("idle", "Idle"),
            ("queued", "Waiting for a Check"),
            ("running", "Being Checked"),
        ],
        string="Check in Progress",
        required=True,
        default="idle",
        copy=False,
        readonly=True,
    )
    check_started = fields.Datetime(copy=False, readonly=True)
    check_requested_by = fields.Many2one(
        "res.users",
        copy=False,
        readonly=True,
        help="Who asked for the check that is waiting or running: it runs "
        "in their name and language.",
    )
    # -- end of checks in the background and health watch: fields ---------

    def _compute_password(self):
        # Write-only: a stored password never travels back to a client.
        self.password = False
        self.smtp_password = False

    def _inverse_password(self):
        for field_name, token_field in SECRET_FIELDS.items():
            for account in self:
                value = account[field_name]
                if value:
                    account.sudo()[token_field] = secret_box.encrypt(value)

    @api.depends("password_token", "smtp_password_token")
    def _compute_password_set(self):
        for account in self:
            stored = account.sudo()
            account.password_set = bool(stored.password_token)
            account.smtp_password_set = bool(stored.smtp_password_token)

    @api.constrains(*TEXT_FIELDS)
    def _check_control_characters(self):
        labels = self._fields
        for account in self:
            for field_name in TEXT_FIELDS:
                if _CONTROL_CHARS.search(account[field_name] or ""):
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
        if all(self[name] == stored[name] for name in SECRET_BINDING_FIELDS):
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
        pin = vals.get("smtp_pinned_certificate")
        # A malformed one stays as typed, for the constraint to show.
        with contextlib.suppress(ValueError):
            if pin:
                vals["smtp_pinned_certificate"] = format_fingerprint(normalize_pin(pin))
        sender_email = vals.get("sender_email")
        # Only a well-formed address is normalized: email_normalize would pick
        # an address out of garbage and hide the user's mistake.
        if isinstance(sender_email, str) and single_email_re.match(sender_email):
            vals["sender_email"] = email_normalize(sender_email)
        return vals

    def _moved_away_from_secrets(self, vals):
        """The accounts whose stored secrets ``vals`` would send elsewhere."""
        changed = [name for name in SECRET_BINDING_FIELDS if name in vals]
        return self.filtered(
            lambda account: (
                (account.password_set or account.smtp_password_set)
                and any(
                    (account[name] or False) != (vals[name] or False)
                    for name in changed
                )
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
        moved = self._moved_away_from_secrets(vals)
        result = super().write(vals)
        if moved:
            moved._remove_secrets(
                [name for name in SECRET_FIELDS if not vals.get(name)],
                self.env._(
                    "The stored password was removed because the server, port, "
                    "security or login changed. Enter it again."
                ),
            )
        if SECRET_FIELDS.keys() & vals.keys():
            self._forget_clear_secrets()
        self._sync_mail_server()
        return result

    def copy_data(self, default=None):
        vals_list = super().copy_data(default=default)
        for account, vals in zip(self, vals_list, strict=True):
            if "name" not in (default or {}):
                vals["name"] = self.env._("%s (copy)", account.name)
        return vals_list

    def action_remove_password(self):
        """Forget the stored password of the mailbox."""
        self._remove_secrets(
            ["password"], self.env._("The stored password was removed.")
        )

    def action_remove_smtp_password(self):
        """Forget the stored separate password."""
        self._remove_secrets(
            ["smtp_password"], self.env._("The stored separate password was removed.")
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

    def _remove_secrets(self, field_names, note):
        self.check_access("write")
        tokens = {SECRET_FIELDS[name]: False for name in field_names}
        for account in self:
            stored = account.sudo()
            if any(stored[token] for token in tokens):
                stored.write(tokens)
                account.message_post(body=note, subtype_xmlid="mail.mt_note")

    def action_send_test_message(self):
        """Send a real message from each account to its own address.

        One account whose time-out is short is checked within the request,
        which answers with the result. Anything that could take longer runs
        in the background (``_cron_run_checks``): the request answers at
        once, and the result arrives on the bus. An account already waiting
        for a check, or being checked, is not checked twice: the request
        waits for that check's result.
        """
        self.check_access("write")
        if len(self) == 1 and self._can_check_inline() and self._lock_for_check():
            result = self._check_job()()
            self._store_check_result(result)
            return self._check_notification()
        return self._queue_checks()

    def _get_smtp_settings(self):
        """The engine's view of this account, secrets decrypted."""
        self.ensure_one()
        stored = self.sudo()
        try:
            password = secret_box.decrypt(stored.password_token)
            login_password = secret_box.decrypt(stored.smtp_password_token)
        except secret_box.SecretKeyError as exc:
            raise UserError(
                self.env._(
                    "The stored password of the account “%(account)s” cannot "
                    "be decrypted with this server's key. Enter the password "
                    "again.",
                    account=self.display_name,
                )
            ) from exc
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
            # Servers with certificates of a private CA: trust that CA too.
            cafile=config.get(CA_FILE_OPTION) or None,
        )

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
        return self._describe_failure(
            result,
            self.env._(
                "The test failed at the step “%(step)s”.",
                step=result.step_label(translate=self.env._),
            ),
        )

    def _describe_failure(self, result, headline):
        """``headline``, then the server's answer and the hint, one a line."""
        parts = [headline]
        if result.code:
            parts.append(
                self.env._(
                    "The server answered: %(code)s %(reply)s",
                    code=result.code,
                    reply=result.reply,
                )
            )
        hint = result.hint_text(translate=self.env._)
        if hint:
            parts.append(hint)
        if result.certificate:
            parts.append(self._describe_certificate(result.certificate))
        return "\n".join(parts)

    def _describe_certificate(self, certificate):
        def date(value):
            if not value:
                return "?"
            naive_utc = value.astimezone(timezone.utc).replace(tzinfo=None)
            return format_datetime(self.env, naive_utc, dt_format="medium")

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

    def _store_check_result(self, result, note=None):
        self.ensure_one()
        previous_state = self.test_state
        message = self._describe_check_result(result)
        if note:
            message = f"{message}\n{note}"
        self.sudo().write(
            {
                "test_state": "ok" if result.ok else "failed",
                "test_date": fields.Datetime.now(),
                "test_user_id": self.env.uid,
                "test_step": result.step_label(translate=self.env._),
                "test_message": message,
                "test_transcript": result.transcript,
                "test_certificate_fingerprint": result.certificate
                and result.certificate.fingerprint,
            }
        )
        self.message_post(
            body=plaintext2html(message),
            subject=self.env._("Account settings check"),
            subtype_xmlid="mail.mt_note",
        )
        self._after_check(result, previous_state)

    def _check_notification(self):
        """The notification that sums up the stored results of ``self``."""
        failed = self.filtered(lambda account: account.test_state != "ok")
        if len(self) == 1:
            title = (
                self.env._("Test message sent")
                if not failed
                else self.env._("The account settings check failed")
            )
            message = self.test_message
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

    # Outgoing mail server: the account's place in Odoo's mail stack

    def _mail_server_values(self):
        """Everything the account's server shows, as the account says it.

        The one mapping between the two: the server refuses any other value
        (see ``ir.mail_server._check_account_values``). The connection
        itself never reads the server: it uses the account's settings.
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
        """Create the outgoing mail server of each account, or bring it up to date."""
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

        ``user`` is the person responsible for a message; the superuser, or
        an empty ``res.users``, stands for Odoo's own system mail. The rule:
        the account belongs to none or one of the user's companies, and the
        user is a member of Email Accounts / User, or an internal user when
        the account allows all of them. System mail goes only through the
        accounts that allow it.
        """
        accounts = self.sudo()
        if not user or user._is_superuser():
            return self.browse(accounts.filtered("allow_system_mail").ids)
        companies = user.sudo().company_ids
        if user.has_group("email_account.group_email_account_user"):
            allowed = set(dict(self._fields["allowed_senders"].selection))
        elif user._is_internal():
            allowed = {"internal_users"}
        else:
            allowed = set()
        return self.browse(
            accounts.filtered(
                lambda account: (
                    account.allowed_senders in allowed
                    and (not account.company_id or account.company_id in companies)
                )
            ).ids
        )

    def _set_message_sender(self, message):
        """Make ``message`` (an ``EmailMessage``) leave as this account.

        A From with the account's address and no name of its own gets the
        sender name. Another address is replaced by the account's sender and
        becomes the Reply-To if the message has none, so that replies still
        reach whoever wrote it.
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
        """Translated reason why the engine could not connect for sending."""
        self.ensure_one()
        return self._describe_failure(
            result,
            self.env._(
                "Sending through the e-mail account “%(account)s” failed at the "
                "step “%(step)s”.",
                account=self.display_name,
                step=result.step_label(translate=self.env._),
            ),
        )

    # Sending API
    #
    # For other modules: every message Odoo sends from an account's address
    # already leaves through the account; these methods are for code that
    # needs to choose an account or send a message it built itself.

    @api.model
    def _find_account(self, email_from=None, company=None, user=None):
        """Return the account to send with, or an empty recordset.

        :param str email_from: the sender address, plain or formatted
            (``"Name" <address>``); when omitted and ``user`` is given, the
            user's own address; when both are omitted, any address
        :param company: a ``res.company``: only its accounts and the shared
            ones
        :param user: a ``res.users``: only the accounts the user may send
            through (see ``_usable_by``)
        :return: one active account, an account of a company before a shared
            one, in the usual order otherwise; in the caller's environment
        """
        if not email_from and user:
            email_from = user.email
        domain = []
        if email_from:
            address = email_normalize(email_from)
            if not address:
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
        """Send a prepared ``email.message.EmailMessage`` through this account.

        The recipients are taken from To, Cc and Bcc. The message leaves as
        the account (see ``_set_message_sender``); a missing From and
        Message-Id are added. Errors are those of
        ``ir.mail_server.send_email``: ``UserError`` when the connection
        fails, ``MailDeliveryException`` when the message is refused.

        :return: the Message-Id of the message
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

    # -- Checks in the background and health watch -------------------------
    #
    # A check that could outlast the worker's time limit runs in the cron job
    # "Email Accounts: run the checks", triggered at once. ``check_state``,
    # written with row locks skipped and committed before any network wait,
    # keeps two requests or two runs from checking one account twice; the
    # network waits run in threads without a cursor, and each result is
    # stored and committed as soon as it is known.

    def _can_check_inline(self):
        """Whether this account's check surely ends well within the request."""
        self.ensure_one()
        longest = INLINE_CHECK_TIMEOUT
        limit = config.get("limit_time_real") or 0
        if limit > 0:
            longest = min(longest, limit * INLINE_CHECK_SHARE)
        return self.smtp_timeout <= longest

    def _lock_for_check(self):
        """Lock this idle account for a check within the request.

        The row lock lasts until the request ends: a second request for the
        same account meanwhile finds it locked and waits, in the background,
        for this check's result instead of checking again.
        """
        self.ensure_one()
        self.flush_recordset(["check_state"])
        self.env.cr.execute(
            SQL(
                "SELECT id FROM email_account WHERE id = %s AND check_state = 'idle' "
                "FOR UPDATE SKIP LOCKED",
                self.id,
            )
        )
        return bool(self.env.cr.fetchone())

    def _check_job(self, timeout=None):
        """This account's check, as a function that needs no cursor.

        What needs the database (settings, secrets, the texts in the
        language of the environment) is read now, so that the function can
        run in a thread. ``timeout`` shortens the account's own time-out.
        """
        self.ensure_one()
        translations = {text: self.env._(text) for text in MESSAGE_TEXTS}
        settings = self._get_smtp_settings()
        if timeout and settings.timeout > timeout:
            settings = dataclasses.replace(settings, timeout=float(timeout))
        now = fields.Datetime.now()
        # Written as the user's language and time zone write it.
        date_text = format_datetime(self.env, now, dt_format="medium")
        name = self.name

        def check():
            return send_test_message(
                settings,
                name,
                translate=lambda text: translations.get(text, text),
                now=now.replace(tzinfo=timezone.utc),
                date_text=date_text,
            )

        return check

    def _queue_checks(self):
        """Have the accounts checked in the background; answer at once."""
        self.env["email.account.check"].sudo().create(
            {"user_id": self.env.uid, "account_ids": [Command.set(self.ids)]}
        )
        self._mark_queued(self.env.user)
        self.env.ref("email_account.email_account_cron_run_checks").sudo()._trigger()
        if len(self) == 1:
            message = self.env._(
                "“%(account)s” is being checked. The result appears here when "
                "it is known; you may leave this page.",
                account=self.display_name,
            )
        else:
            message = self.env._(
                "%(count)s accounts are being checked. The progress and the "
                "result appear here; you may leave this page.",
                count=len(self),
            )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": self.env._("Checking in the background"),
                "message": message,
                "type": "info",
                "sticky": False,
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def _mark_queued(self, requester):
        """Queue the idle accounts of ``self`` for a check by ``requester``.

        Accounts already queued or being checked are left as they are: their
        coming result answers this request too. An account locked by a check
        within another request is skipped the same way.
        """
        if not self:
            return
        self.flush_model(["check_state", "check_requested_by"])
        self.env.cr.execute(
            SQL(
                """
                UPDATE email_account
                   SET check_state = 'queued', check_requested_by = %s
                 WHERE id IN (
                        SELECT id FROM email_account
                         WHERE id IN %s AND check_state = 'idle'
                           FOR UPDATE SKIP LOCKED)
                """,
                requester.id or None,
                tuple(self.ids),
            )
        )
        self.invalidate_model(["check_state", "check_requested_by"])

    @api.model
    def _cron_run_checks(self):
        """Run the checks that wait, as many at once as allowed.

        One run takes at most a share of the cron worker's time limit (a
        longer time-out is shortened to fit, and the result says so); each
        result is stored and committed as soon as it is known. The job
        triggers itself again while checks wait, rather than reporting
        progress to the cron runner, which would run it again and again
        within one round of the worker.
        """
        auto_commit = not modules.module.current_test
        budget = self._check_budget()
        self._queue_forgotten_checks(budget)
        accounts = self._claim_checks(auto_commit)
        if accounts:
            accounts._run_checks(budget, auto_commit)
        cron = self.env.ref("email_account.email_account_cron_run_checks").sudo()
        everything = self.sudo().with_context(active_test=False)
        if everything.search_count([("check_state", "=", "queued")], limit=1):
            cron._trigger()
        elif (
            self.env["email.account.check"]
            .sudo()
            .search_count([("state", "=", "running")], limit=1)
        ):
            cron._trigger(fields.Datetime.now() + timedelta(minutes=1))

    @api.model
    def _check_budget(self):
        """Seconds that one run of checks in the background may take."""
        limit = config.get("limit_time_real_cron")
        if limit is None or limit < 0:  # -1: the same limit as requests
            limit = config.get("limit_time_real")
        if not limit or limit <= 0:
            return MAX_TIMEOUT
        return max(limit * BACKGROUND_CHECK_SHARE, MIN_TIMEOUT)

    @api.model
    def _queue_forgotten_checks(self, budget):
        """Queue again what a killed run left, and what a request waits for."""
        stale = fields.Datetime.now() - timedelta(seconds=2 * budget + 60)
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """
                UPDATE email_account SET check_state = 'queued'
                 WHERE check_state = 'running' AND check_started < %s
                """,
                stale,
            )
        )
        self.invalidate_model(["check_state"])
        requests = (
            self.env["email.account.check"].sudo().search([("state", "=", "running")])
        )
        for request in requests:
            if not request.pending_account_ids:  # its accounts were deleted
                request._send_summary()
                continue
            waiting = request.pending_account_ids.filtered(
                lambda account: account.check_state == "idle"
            )
            waiting._mark_queued(request.user_id)

    @api.model
    def _claim_checks(self, auto_commit):
        """Mark queued accounts as being checked, committed; return them."""
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """
                UPDATE email_account
                   SET check_state = 'running',
                       check_started = now() AT TIME ZONE 'UTC'
                 WHERE id IN (
                        SELECT id FROM email_account
                         WHERE check_state = 'queued'
                         ORDER BY id
                         LIMIT %s
                           FOR UPDATE SKIP LOCKED)
                RETURNING id
                """,
                MAX_PARALLEL_CHECKS,
            )
        )
        ids = [row[0] for row in self.env.cr.fetchall()]
        self.invalidate_model(["check_state", "check_started"])
        if auto_commit:
            self.env["ir.cron"]._commit_progress()
        return self.with_context(active_test=False).browse(sorted(ids))

    def _run_checks(self, budget, auto_commit):
        """Check the accounts in parallel, each in its requester's name."""
        jobs = {}
        for account in self:
            requester = account.check_requested_by
            acting = account.with_user(requester) if requester else account
            acting = acting.sudo().with_context(lang=acting.env.user.lang)
            shortened = budget if account.smtp_timeout > budget else None
            try:
                jobs[acting] = (acting._check_job(timeout=shortened), shortened)
            except UserError as exc:
                # A password that this server's key cannot decrypt.
                failure = CheckResult(ok=False, step=Step.AUTH, error="secret key")
                acting._store_check_result(failure, note=str(exc))
                if auto_commit:
                    self.env["ir.cron"]._commit_progress(1)
        if not jobs:
            return
        with ThreadPoolExecutor(
            max_workers=len(jobs), thread_name_prefix="email_account_check"
        ) as pool:
            futures = {pool.submit(job): acting for acting, (job, _s) in jobs.items()}
            for future in as_completed(futures):
                acting = futures[future]
                result = future.result()
                shortened = jobs[acting][1]
                note = None
                if shortened and not result.ok and result.hint == "timeout":
                    note = acting.env._(
                        "The check stopped after %(seconds)s seconds, the longest "
                        "that a check in the background may take on this server "
                        "(the account's time-out is %(timeout)s seconds).",
                        seconds=int(shortened),
                        timeout=acting.smtp_timeout,
                    )
                acting._store_check_result(result, note=note)
                if auto_commit:
                    self.env["ir.cron"]._commit_progress(1)

    def _after_check(self, result, previous_state):
        """Release the account, answer who waits for it, watch its health."""
        self.ensure_one()
        if self.check_state != "idle" or self.check_requested_by:
            self.sudo().write(
                {
                    "check_state": "idle",
                    "check_started": False,
                    "check_requested_by": False,
                }
            )
        self.env["email.account.check"].sudo()._account_checked(self)
        self._watch_health(result, previous_state)

    @api.model
    def _cron_health_watch(self):
        """Queue a check of every active account whose health is watched."""
        accounts = self.sudo().search([("health_watch", "=", True)])
        if accounts:
            accounts._mark_queued(self.env["res.users"])
            self.env.ref("email_account.email_account_cron_run_checks")._trigger()

    def _health_recipients(self):
        """The users told when this account stops working: its managers.

        Members of Email Accounts / Manager (administrators included) of the
        account's company, or of any company for a shared account. Extend it
        to tell others, the owner of a personal account for example.
        """
        self.ensure_one()
        managers = self.env.ref("email_account.group_email_account_manager").sudo()
        return managers.all_user_ids.filtered(
            lambda user: (
                user.active
                and not user.share
                and (not self.company_id or self.company_id in user.company_ids)
            )
        )

    def _watch_health(self, result, previous_state):
        """Tell the people concerned once when the account stops working.

        An account that worked and now fails gets one activity for each of
        its health recipients; while one is open, nobody is told again. A
        success marks them done.
        """
        self.ensure_one()
        activity_type = self.env.ref(
            "email_account.mail_activity_type_email_account_failure"
        )
        account = self.sudo()
        activities = account.activity_ids.filtered(
            lambda activity: activity.activity_type_id == activity_type
        )
        if result.ok:
            if activities:
                activities.action_feedback(
                    feedback=self.env._("The account works again.")
                )
            return
        if activities or previous_state != "ok":
            return
        for user in self._health_recipients():
            localized = account.with_context(lang=user.lang or "en_US")
            headline = localized.env._(
                "The account worked before; now it fails at the step “%(step)s”.",
                step=result.step_label(translate=localized.env._),
            )
            account.activity_schedule(
                activity_type_id=activity_type.id,
                user_id=user.id,
                summary=localized.env._(
                    "The e-mail account “%(account)s” stopped working",
                    account=account.display_name,
                ),
                note=plaintext2html(localized._describe_failure(result, headline)),
            )

    def _record_sending_result(self, result):
        """Keep the status current with what real sending met.

        A failure is stored like a failed check; a success matters only
        after a failure (storing every success would cost a write a mail).
        """
        self.ensure_one()
        account = self.sudo()
        previous_state = account.test_state
        if result.ok:
            if previous_state != "failed":
                return
            values = {
                "test_state": "ok",
                "test_step": result.step_label(translate=self.env._),
                "test_message": self.env._(
                    "A message was sent through this account: it works again."
                ),
                "test_transcript": False,
                "test_certificate_fingerprint": False,
            }
        else:
            values = {
                "test_state": "failed",
                "test_step": result.step_label(translate=self.env._),
                "test_message": self._describe_sending_failure(result),
                "test_transcript": result.transcript or False,
                "test_certificate_fingerprint": result.certificate
                and result.certificate.fingerprint,
            }
        account.write(
            {**values, "test_date": fields.Datetime.now(), "test_user_id": self.env.uid}
        )
        self._watch_health(result, previous_state)

    # -- end of checks in the background and health watch -------------------
