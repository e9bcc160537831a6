"""E-mail accounts: a sender identity with its own SMTP settings.

An account is what the original form called an "e-mail provider / account":
who the mail comes from (sender name and address) and how it leaves (SMTP
host, port, security, timeout and credentials). The SMTP dialogue itself is
done by the Odoo-free ``smtp_engine`` package; this model stores the settings,
keeps the passwords encrypted (see ``tools.secret_box``), runs the engine and
translates what it reports.
"""

import base64
import contextlib
import dataclasses
import ipaddress
import json
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timedelta, timezone
from email.utils import make_msgid

import requests

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
from odoo.tools.misc import hmac

from ..smtp_engine import (
    HINTS,
    MESSAGE_TEXTS,
    SmtpOutcome,
    SmtpSettings,
    Step,
    send_test_message,
)
from ..smtp_engine.certificate import format_fingerprint, normalize_pin
from ..smtp_engine.detect import (
    AUTOCONFIG_URLS,
    ISPDB_URL,
    PROBE_COMBINATIONS,
    PROBE_HOSTS,
    DetectOptions,
    detect_settings,
    nameserver_resolver,
)
from ..smtp_engine.roundtrip import (
    DEFAULT_PORTS as IMAP_DEFAULT_PORTS,
)
from ..smtp_engine.roundtrip import (
    NO_VERDICTS,
    VERDICT_HINTS,
    ImapSettings,
    find_message,
)
from ..smtp_engine.trust_dns import PROBLEM, WARNING, sender_domain_report
from ..tools import secret_box

_logger = logging.getLogger(__name__)

# Option of the Odoo configuration file: a PEM bundle of extra certificate
# authorities to trust, for SMTP servers with certificates of a private CA.
CA_FILE_OPTION = "email_account_ca_file"
# Option of the Odoo configuration file: the DNS server (address[:port]) to
# ask for the SPF and DMARC records of sender domains; default: the system's.
DNS_SERVER_OPTION = "email_account_dns_server"
MIN_ROUNDTRIP_WAIT = 5
MAX_ROUNDTRIP_WAIT = 300
# Verdicts of the receiving server, in the order they are shown.
TRUST_METHODS = ("spf", "dkim", "dmarc")
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
# Personal accounts: the settings (see res.config.settings) and the
# activity that tells an owner their account failed.
PERSONAL_ACCOUNTS_PARAM = "email_account.personal_accounts"
RATE_LIMIT_PARAM = "email_account.personal_rate_limit"
FAILURE_ACTIVITY = "email_account.mail_activity_type_account_failure"
# A stored password goes only where these say: changing one drops it.
SECRET_BINDING_FIELDS = (
    "smtp_host",
    "smtp_port",
    "smtp_encryption",
    "smtp_pinned_certificate",
    "username",
    "smtp_login",
    # Round trip: the mailbox password also goes to the IMAP server.
    "imap_host",
    "imap_port",
    "imap_encryption",
)

# OAuth 2.0: the providers' documented servers, and what binds the tokens.
OAUTH_PROVIDERS = ("outlook", "gmail")
OAUTH_SERVERS = {
    "outlook": {
        "smtp_host": "smtp.office365.com",
        "smtp_port": 587,
        "smtp_encryption": "starttls",
    },
    "gmail": {
        "smtp_host": "smtp.gmail.com",
        "smtp_port": 465,
        "smtp_encryption": "ssl",
    },
}
OAUTH_TOKEN_FIELDS = {
    # the mixins' field: (our encrypted column, or the expiry)
    "microsoft_outlook_refresh_token": "oauth_refresh_secret",
    "microsoft_outlook_access_token": "oauth_access_secret",
    "google_gmail_refresh_token": "oauth_refresh_secret",
    "google_gmail_access_token": "oauth_access_secret",
}
OAUTH_EXPIRATION_FIELDS = (
    "microsoft_outlook_access_token_expiration",
    "google_gmail_access_token_expiration",
)
OAUTH_BINDING_FIELDS = (*SECRET_BINDING_FIELDS, "smtp_authentication")
# Renew an access token that expires within this many seconds: the time
# to renew it and to open the session, as core's mixins allow.
OAUTH_EXPIRY_MARGIN = 10


def _utc_datetime(timestamp):
    """A POSIX timestamp as a naive UTC datetime, as the ORM stores them."""
    return datetime.fromtimestamp(int(timestamp), timezone.utc).replace(tzinfo=None)


def guess_imap_host(smtp_host):
    """The usual IMAP server of an SMTP server: smtp.x → imap.x, else the same."""
    host = (smtp_host or "").strip()
    if host.lower().startswith("smtp."):
        return "imap." + host[5:]
    return host


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
    _inherit = [
        "mail.thread",
        "mail.activity.mixin",
        "microsoft.outlook.mixin",
        "google.gmail.mixin",
    ]
    _order = "name, id"
    _check_company_auto = True
    # Sign-in with Microsoft 365 and Google (see "OAuth 2.0" below)
    _OUTLOOK_SCOPE = "https://outlook.office.com/SMTP.Send"
    _email_field = "username"

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
        groups="base.group_user",
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
        groups="base.group_user",
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
    # OAuth 2.0: Microsoft 365 and Google
    smtp_authentication = fields.Selection(
        selection=[
            ("password", "Password"),
            ("outlook", "Microsoft 365 / Outlook (OAuth)"),
            ("gmail", "Google (OAuth)"),
        ],
        string="Authentication",
        required=True,
        default="password",
        tracking=True,
        help="Password: the user name and password below.\n"
        "Microsoft 365 / Outlook and Google: sign in to the mailbox once with "
        "“Connect”; Odoo then logs in with a token (OAuth 2.0, XOAUTH2) "
        "and renews it by itself.",
    )
    oauth_mailbox = fields.Char(
        string="Connected Mailbox",
        copy=False,
        readonly=True,
        help="The mailbox whose sign-in the account uses.",
    )
    oauth_expiration = fields.Datetime(
        string="Token Expires",
        copy=False,
        readonly=True,
        help="When the current access token expires; Odoo renews it with the "
        "sign-in before it is used again.",
    )
    oauth_connected = fields.Boolean(
        compute="_compute_oauth_connected", string="Connected"
    )
    # Encrypted at rest, readable only by the superuser (see tools.secret_box).
    oauth_refresh_secret = fields.Char(
        string="Encrypted Refresh Token",
        groups="base.group_system",
        copy=False,
        prefetch=False,
    )
    oauth_access_secret = fields.Char(
        string="Encrypted Access Token",
        groups="base.group_system",
        copy=False,
        prefetch=False,
    )
    # The mixins' plain token columns become write-only views of the
    # encrypted ones: their sign-in flows write the tokens here, and no
    # token is ever read back from them (see _oauth_access_token).
    microsoft_outlook_refresh_token = fields.Char(
        compute="_compute_oauth_tokens", inverse="_inverse_oauth_tokens", store=False
    )
    microsoft_outlook_access_token = fields.Char(
        compute="_compute_oauth_tokens", inverse="_inverse_oauth_tokens", store=False
    )
    microsoft_outlook_access_token_expiration = fields.Integer(
        compute="_compute_oauth_tokens", inverse="_inverse_oauth_tokens", store=False
    )
    google_gmail_refresh_token = fields.Char(
        compute="_compute_oauth_tokens", inverse="_inverse_oauth_tokens", store=False
    )
    google_gmail_access_token = fields.Char(
        compute="_compute_oauth_tokens", inverse="_inverse_oauth_tokens", store=False
    )
    google_gmail_access_token_expiration = fields.Integer(
        compute="_compute_oauth_tokens", inverse="_inverse_oauth_tokens", store=False
    )

    # Settings detection: where the server settings came from (see
    # action_detect_settings). Kept for the settings they were found for.
    smtp_detected_source = fields.Selection(
        selection=[
            ("srv", "DNS record"),
            ("autoconfig", "Domain's configuration file"),
            ("ispdb", "Mozilla's database"),
            ("provider", "Known provider"),
            ("probe", "Trying the usual ports"),
        ],
        string="Settings Found By",
        copy=False,
        readonly=True,
    )
    smtp_detected_for = fields.Char(
        string="Settings Found",
        copy=False,
        readonly=True,
        help="The server, port and security that the detection found, as "
        "host:port/security.",
    )
    smtp_detected_note = fields.Text(
        string="Where the Settings Come From",
        copy=False,
        readonly=True,
    )
    smtp_settings_detected = fields.Boolean(
        compute="_compute_smtp_settings_detected",
        string="Settings As Detected",
    )

    # --- Personal accounts: fields ---------------------------------------
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
    # --- End of personal accounts: fields --------------------------------

    # -- Round trip: the incoming side and the last delivery check ---------
    delivery_check = fields.Boolean(
        string="Check Delivery",
        tracking=True,
        help="After the server accepted the test message, log in to the "
        "mailbox over IMAP with the account's user name and password, look "
        "for the message in the inbox and in the spam folder, and report "
        "whether receivers will trust it (SPF, DKIM, DMARC).",
    )
    imap_host = fields.Char(
        string="IMAP Server",
        tracking=True,
        help="Host name or IP address of the mailbox's incoming mail server. "
        "Leave empty to use the SMTP server's name, with “smtp.” replaced by "
        "“imap.”.",
    )
    imap_host_used = fields.Char(
        string="IMAP Server Used", compute="_compute_imap_host_used"
    )
    imap_port = fields.Integer(
        string="IMAP Port",
        default=993,
        tracking=True,
        help="Usually 993 with SSL/TLS, 143 with STARTTLS.",
    )
    imap_encryption = fields.Selection(
        selection=[
            ("none", "None"),
            ("starttls", "STARTTLS"),
            ("ssl", "SSL/TLS"),
        ],
        string="IMAP Security",
        default="ssl",
        required=True,
        tracking=True,
        help="The server's certificate and host name are always verified.",
    )
    roundtrip_wait = fields.Integer(
        string="Wait for Delivery",
        default=60,
        required=True,
        tracking=True,
        help="Seconds to wait for the test message to arrive in the mailbox.",
    )
    roundtrip_delete = fields.Boolean(
        string="Delete Test Message",
        default=True,
        tracking=True,
        help="Delete the test message from the mailbox once it is found.",
    )
    roundtrip_state = fields.Selection(
        selection=[
            ("untested", "Not Checked"),
            ("inbox", "Delivered to the Inbox"),
            ("junk", "Delivered to Spam"),
            ("not_found", "Not Delivered"),
            ("failed", "Mailbox Check Failed"),
        ],
        string="Delivery",
        required=True,
        default="untested",
        copy=False,
        readonly=True,
    )
    roundtrip_seconds = fields.Float(
        string="Delivery Time",
        digits=(16, 1),
        copy=False,
        readonly=True,
        help="Seconds from the server's acceptance of the test message to "
        "its arrival in the mailbox.",
    )
    roundtrip_message = fields.Text(string="Delivery Result", copy=False, readonly=True)
    roundtrip_transcript = fields.Text(
        string="IMAP Transcript",
        copy=False,
        readonly=True,
        groups="email_account.group_email_account_manager",
        help="The dialogue with the IMAP server during the last delivery "
        "check; the password is masked.",
    )
    trust_spf = fields.Char(string="SPF", copy=False, readonly=True)
    trust_dkim = fields.Char(string="DKIM", copy=False, readonly=True)
    trust_dmarc = fields.Char(string="DMARC", copy=False, readonly=True)
    trust_level = fields.Selection(
        selection=[
            ("ok", "Trusted"),
            ("warning", "Doubtful"),
            ("problem", "At Risk"),
        ],
        string="Receivers' Trust",
        copy=False,
        readonly=True,
        help="The worst of the receiving server's verdicts on the test "
        "message and of what the sender domain publishes in DNS.",
    )
    trust_message = fields.Text(string="Trust Verdict", copy=False, readonly=True)
    # -- end of round trip fields ------------------------------------------

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
                    try:
                        token = secret_box.encrypt(value)
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
        # A port found together with its security (25 with STARTTLS) stays.
        if self.smtp_settings_detected:
            return
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
        vals_list = self._personal_vals_list(vals_list)
        accounts = super().create([self._normalize_vals(vals) for vals in vals_list])
        accounts._forget_clear_secrets()
        accounts._sync_mail_server()
        return accounts

    def write(self, vals):
        self._check_personal_write(vals)
        vals = self._normalize_vals(vals)
        moved = self._moved_away_from_secrets(vals)
        oauth_moved = self._moved_away_from_oauth(vals)
        result = super().write(vals)
        if oauth_moved:
            oauth_moved._oauth_forget(
                self.env._(
                    "The sign-in was disconnected because the server, port, "
                    "security, user name or authentication changed. Connect "
                    "the account again."
                )
            )
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

    def _register_hook(self):
        # At start rather than at the first message: a refused or missing
        # key then shows in the log before anyone needs a password.
        super()._register_hook()
        stored = (
            self.sudo()
            .with_context(active_test=False)
            .search_count(
                [
                    "|",
                    ("password_token", "!=", False),
                    ("smtp_password_token", "!=", False),
                ],
                limit=1,
            )
        )
        secret_box.check_keys(secrets_stored=bool(stored))

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
            self._check_delivery([result])
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
            raise self._secret_key_user_error(exc) from exc
        settings = SmtpSettings(
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
        return self._with_oauth_token(settings)

    def _secret_key_user_error(self, error):
        """The translated ``UserError`` for a ``secret_box.SecretKeyError``."""
        if isinstance(error, secret_box.KeyMissingError):
            message = self.env._(
                "The encryption key of the e-mail accounts is missing, so the "
                "stored passwords cannot be decrypted. Restore the key from your "
                "backup: it is looked for in the option “%(option)s” of the Odoo "
                "configuration file, then in the environment variable "
                "%(variable)s, then in the file %(path)s.",
                option=secret_box.KEY_OPTION,
                variable=secret_box.KEY_ENVIRON,
                path=secret_box.key_file_path(),
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
                option=secret_box.KEY_OPTION,
                variable=secret_box.KEY_ENVIRON,
                path=secret_box.key_file_path(),
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
        self._tell_owner_of_check(result)

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

    # Settings detection: the outgoing server from the sender address
    #
    # The engine's ``detect_settings`` does the work; these methods feed it
    # the account's time-out and the system parameters below, and apply
    # what it finds like a user typing it: the onchange of the sender
    # address fills an empty server, the button overwrites and, through
    # write(), drops the stored passwords as any change of server does.

    @api.depends("smtp_host", "smtp_port", "smtp_encryption", "smtp_detected_for")
    def _compute_smtp_settings_detected(self):
        for account in self:
            account.smtp_settings_detected = bool(
                account.smtp_detected_for
                and account.smtp_detected_for == account._smtp_settings_key()
            )

    def _smtp_settings_key(self):
        return f"{self.smtp_host}:{self.smtp_port}/{self.smtp_encryption}"

    @api.onchange("sender_email")
    def _onchange_sender_email_detect(self):
        """Fill the server from a new sender address; never overwrite a typed one."""
        if self.smtp_host or not single_email_re.match(self.sender_email or ""):
            return None
        detection = self._detect_settings()
        self.update(self._detected_values(detection))
        if detection.settings:
            return None
        return {
            "warning": {
                "title": self.env._("No settings found"),
                "message": self.smtp_detected_note,
                "type": "notification",
            }
        }

    def action_detect_settings(self):
        """Fill the server, port and security from the sender address."""
        self.ensure_one()
        self.check_access("write")
        detection = self._detect_settings()
        self.write(self._detected_values(detection))
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": self.env._("Settings found")
                if detection.settings
                else self.env._("No settings found"),
                "message": self.smtp_detected_note,
                "type": "success" if detection.settings else "warning",
                "sticky": not detection.settings,
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def _detect_settings(self):
        self.check_access("write" if self.id else "create")
        try:
            return detect_settings(
                self.sender_email or "",
                float(self.smtp_timeout or DEFAULT_TIMEOUT),
                self._detect_options(),
            )
        except ValueError as exc:
            raise UserError(
                self.env._(
                    "Enter the sender address first, in the form "
                    "name@example.com: the settings are looked up from its "
                    "domain."
                )
            ) from exc

    def _detected_values(self, detection):
        """The field values that apply ``detection`` to the account."""
        note = detection.describe(translate=self.env._)
        found = detection.settings
        if found is None:
            return {
                "smtp_detected_source": False,
                "smtp_detected_for": False,
                "smtp_detected_note": note,
            }
        return {
            "smtp_host": found.host,
            "smtp_port": found.port,
            "smtp_encryption": found.encryption,
            "smtp_detected_source": found.source,
            "smtp_detected_for": f"{found.host}:{found.port}/{found.encryption}",
            "smtp_detected_note": note,
        }

    @api.model
    def _detect_options(self):
        """Where detection looks: system parameters, else the public sources.

        ``email_account.detect_nameservers``: DNS servers to ask instead of
        the system's, as ``address`` or ``address:port`` (IPv6 in brackets);
        ``email_account.detect_autoconfig_urls`` and
        ``email_account.detect_probe_hosts``: templates with ``{domain}``
        and ``{email}``; ``email_account.detect_ispdb_url``: the ISP
        database, ``off`` to skip it; ``email_account.detect_probe``: the
        combinations to try, as ``port/security``.
        """
        params = self.env["ir.config_parameter"].sudo()

        def words(key, default):
            value = params.get_param(f"email_account.detect_{key}")
            return tuple(value.split()) if value else default

        nameservers = words("nameservers", ())
        ispdb_url = params.get_param("email_account.detect_ispdb_url") or ISPDB_URL
        combinations = tuple(
            (int(port), security)
            for port, _slash, security in (
                word.partition("/") for word in words("probe", ())
            )
        )
        return DetectOptions(
            resolver=nameserver_resolver(nameservers) if nameservers else None,
            autoconfig_urls=words("autoconfig_urls", AUTOCONFIG_URLS),
            ispdb_url="" if ispdb_url == "off" else ispdb_url,
            probe_hosts=words("probe_hosts", PROBE_HOSTS),
            probe_combinations=combinations or PROBE_COMBINATIONS,
            cafile=config.get(CA_FILE_OPTION) or None,
        )

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
        accounts that allow it. A personal account is its owner's alone,
        while personal accounts are allowed (see ``_personal_accounts_allowed``).
        """
        accounts = self.sudo()
        if not user or user._is_superuser():
            return self.browse(accounts.filtered("allow_system_mail").ids)
        companies = user.sudo().company_ids
        if user.has_group("email_account.group_email_account_user"):
            allowed = set(dict(self._fields["allowed_senders"].selection)) - {"owner"}
        elif user._is_internal():
            allowed = {"internal_users"}
        else:
            allowed = set()
        owns = self._personal_accounts_allowed() and user._is_internal()
        return self.browse(
            accounts.filtered(
                lambda account: (
                    (
                        account.allowed_senders in allowed
                        or (owns and account.owner_user_id == user)
                    )
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

    # OAuth 2.0: Microsoft 365 and Google
    #
    # The sign-in flows, their callbacks and the token requests are core's
    # (microsoft.outlook.mixin, google.gmail.mixin), for the company's own
    # OAuth app or Odoo's IAP proxy. The account keeps the tokens encrypted
    # like its passwords, bound to the server and mailbox they were given
    # for, and hands the engine a valid access token to log in with XOAUTH2.

    def _compute_oauth_tokens(self):
        # Write-only, as the passwords: a token never travels to a client.
        for field_name in (*OAUTH_TOKEN_FIELDS, *OAUTH_EXPIRATION_FIELDS):
            self[field_name] = False

    def _inverse_oauth_tokens(self):
        for account in self:
            values = {
                column: secret_box.encrypt(account[field_name])
                for field_name, column in OAUTH_TOKEN_FIELDS.items()
                if account[field_name]
            }
            for field_name in OAUTH_EXPIRATION_FIELDS:
                if account[field_name]:
                    values["oauth_expiration"] = _utc_datetime(account[field_name])
            if "oauth_refresh_secret" in values:
                values["oauth_mailbox"] = account._oauth_login()
            if values:
                account.sudo().write(values)

    @api.depends("oauth_refresh_secret")
    def _compute_oauth_connected(self):
        for account in self:
            account.oauth_connected = bool(account.sudo().oauth_refresh_secret)

    @api.onchange("smtp_authentication")
    def _onchange_smtp_authentication(self):
        server = OAUTH_SERVERS.get(self.smtp_authentication)
        if not server:
            return
        self.update({**server, "smtp_auth_required": True})
        if not self.username:
            self.username = self.sender_email

    def _moved_away_from_oauth(self, vals):
        """The connected accounts whose tokens ``vals`` would send elsewhere."""
        changed = [name for name in OAUTH_BINDING_FIELDS if name in vals]
        if not changed:
            return self.browse()
        return self.filtered(
            lambda account: (
                account.oauth_connected
                and any(
                    (account[name] or False) != (vals[name] or False)
                    for name in changed
                )
            )
        )

    def _oauth_forget(self, note):
        self.check_access("write")
        for account in self:
            stored = account.sudo()
            if stored.oauth_refresh_secret or stored.oauth_access_secret:
                stored.write(
                    {
                        "oauth_refresh_secret": False,
                        "oauth_access_secret": False,
                        "oauth_expiration": False,
                        "oauth_mailbox": False,
                    }
                )
                account.message_post(body=note, subtype_xmlid="mail.mt_note")

    def _oauth_login(self):
        """The mailbox the account signs in as: its user name or address."""
        self.ensure_one()
        return self.username or self.sender_email or ""

    def _oauth_provider_name(self):
        return dict(
            self._fields["smtp_authentication"]._description_selection(self.env)
        )[self.smtp_authentication]

    def action_oauth_connect(self):
        """Sign in to the account's mailbox with the provider's own flow."""
        self.ensure_one()
        self.check_access("write")
        if self.smtp_authentication not in OAUTH_PROVIDERS:
            raise UserError(
                self.env._(
                    "Choose “Microsoft 365 / Outlook (OAuth)” or “Google (OAuth)” "
                    "as the authentication first."
                )
            )
        # Core's flows let only administrators start a sign-in; whoever may
        # change the account may connect it. The sign-in stays bound to the
        # user who starts it (see _get_outlook_csrf_token).
        account = self.sudo()
        if self.smtp_authentication == "outlook":
            return account.open_microsoft_outlook_uri()
        return account.open_google_gmail_uri()

    def action_oauth_disconnect(self):
        """Forget the tokens of the sign-in."""
        self._oauth_forget(self.env._("The sign-in was disconnected."))

    def _get_outlook_csrf_token(self):
        # Core's token is the same for every user and never expires; bound
        # to the user, a sign-in can be completed only by who started it.
        return hmac(
            self.env(su=True),
            "email_account_oauth",
            (super()._get_outlook_csrf_token(), self.env.uid),
        )

    def _get_gmail_csrf_token(self):
        return hmac(
            self.env(su=True),
            "email_account_oauth",
            (super()._get_gmail_csrf_token(), self.env.uid),
        )

    def _fetch_outlook_token(self, grant_type, **values):
        response = super()._fetch_outlook_token(grant_type, **values)
        self._check_oauth_identity(response.get("id_token"))
        return response

    def _fetch_gmail_token(self, grant_type, **values):
        response = super()._fetch_gmail_token(grant_type, **values)
        self._check_oauth_identity(response.get("id_token"))
        return response

    def _check_oauth_identity(self, id_token):
        """Refuse the tokens of another mailbox than the account's.

        The ID token comes straight from the provider's token endpoint, over
        TLS, in answer to the app's own request: its claims need no
        signature check (the same reasoning as core's flows).
        """
        self.ensure_one()
        try:
            payload = id_token.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
        except (AttributeError, IndexError, ValueError):
            return
        signed_in = claims.get("email") or claims.get("preferred_username")
        login = self._oauth_login()
        if signed_in and email_normalize(signed_in) != email_normalize(login):
            raise UserError(
                self.env._(
                    "You signed in as %(mailbox)s, but the account logs in as "
                    "%(login)s. Sign in with that mailbox, or change the "
                    "account's user name first.",
                    mailbox=signed_in,
                    login=login,
                )
            )

    def _with_oauth_token(self, settings):
        """``settings`` with a valid access token, for OAuth accounts."""
        if self.smtp_authentication not in OAUTH_PROVIDERS:
            return settings
        return dataclasses.replace(
            settings,
            auth_required=True,
            username=self._oauth_login(),
            password="",
            login="",
            login_password="",
            oauth_token=self._oauth_access_token(),
        )

    def _oauth_access_token(self):
        """Return a valid access token, renewed through the mixin if needed."""
        self.ensure_one()
        stored = self.sudo()
        provider = self._oauth_provider_name()
        try:
            refresh_token = secret_box.decrypt(stored.oauth_refresh_secret)
            access_token = secret_box.decrypt(stored.oauth_access_secret)
        except secret_box.SecretKeyError as exc:
            raise UserError(
                self.env._(
                    "The sign-in of the account “%(account)s” cannot be decrypted "
                    "with this server's key. Connect the account again.",
                    account=self.display_name,
                )
            ) from exc
        if not refresh_token:
            raise UserError(
                self.env._(
                    "The account “%(account)s” is not connected to %(provider)s: "
                    "click “Connect” and sign in to its mailbox.",
                    account=self.display_name,
                    provider=provider,
                )
            )
        expiration = stored.oauth_expiration
        if (
            access_token
            and expiration
            and (expiration - fields.Datetime.now()).total_seconds()
            > OAUTH_EXPIRY_MARGIN
        ):
            return access_token
        try:
            if self.smtp_authentication == "outlook":
                refresh_token, access_token, _id_token, expires_at = (
                    stored._fetch_outlook_access_token(refresh_token)
                )
            else:
                access_token, expires_at = stored._fetch_gmail_access_token(
                    refresh_token
                )
        except requests.RequestException as exc:
            raise UserError(
                self.env._(
                    "The sign-in of the account “%(account)s” could not be renewed: "
                    "%(provider)s could not be reached. Try again later.",
                    account=self.display_name,
                    provider=provider,
                )
            ) from exc
        except UserError as exc:
            hint = HINTS["oauth_token_refused"]
            raise UserError(
                self.env._(
                    "%(provider)s refused to renew the sign-in of the account "
                    "“%(account)s”: %(reason)s\n%(hint)s",
                    provider=provider,
                    account=self.display_name,
                    reason=exc.args[0] if exc.args else "",
                    hint=self.env._(hint),
                )
            ) from exc
        stored.write(
            {
                "oauth_refresh_secret": secret_box.encrypt(refresh_token),
                "oauth_access_secret": secret_box.encrypt(access_token),
                "oauth_expiration": _utc_datetime(expires_at),
            }
        )
        return access_token

    # --- Personal accounts -----------------------------------------------
    #
    # A personal account is a user's own mailbox: ``owner_user_id`` says
    # whose it is and ``allowed_senders`` is "owner", so that _usable_by, the
    # one rule of who may send, lets only the owner send through it. Its
    # owner creates, edits and checks it without any Email Accounts group;
    # security/email_account_personal_security.xml hides it from everybody
    # else but the managers.

    @api.depends("owner_user_id")
    @api.depends_context("uid")
    def _compute_is_own_account(self):
        manager = self.env.user.has_group("email_account.group_email_account_manager")
        for account in self:
            account.is_own_account = account.owner_user_id == self.env.user
            account.can_manage = manager or account.is_own_account

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
            if owner and not owner._is_internal():
                raise ValidationError(
                    self.env._("Only internal users have personal e-mail accounts.")
                )
            if owner and (
                account.allowed_senders != "owner" or account.allow_system_mail
            ):
                raise ValidationError(
                    self.env._(
                        "A personal account sends only its owner's mail: it cannot "
                        "be opened to other users or to Odoo's system mail."
                    )
                )
            if not owner and account.allowed_senders == "owner":
                raise ValidationError(
                    self.env._(
                        "Only a personal account is for its owner only. Choose who "
                        "may send through the shared account “%(account)s”.",
                        account=account.display_name,
                    )
                )

    @api.model
    def _personal_accounts_allowed(self):
        """Whether the settings allow personal accounts."""
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

    @api.model
    def _personal_vals_list(self, vals_list):
        """Make the accounts that users create for themselves personal.

        Anybody but a manager creates only their own account (the record
        rules refuse any other); managers create a personal one by naming
        its owner.
        """
        user = self.env.user
        manager = self.env.su or user.has_group(
            "email_account.group_email_account_manager"
        )
        default_owner = self.env.context.get("default_owner_user_id")
        result = []
        for vals in vals_list:
            vals = dict(vals)
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
            result.append(vals)
        return result

    def _check_personal_write(self, vals):
        """Nobody hands a personal account over or makes an account personal."""
        if self.env.su or "owner_user_id" not in vals:
            return
        owner_id = vals["owner_user_id"] or False
        if any(account.owner_user_id.id != owner_id for account in self):
            raise UserError(
                self.env._(
                    "The owner of an e-mail account is set when the account is "
                    "created and never changes."
                )
            )

    @api.model
    def action_open_my_account(self):
        """Open the current user's personal account, or a new one for them."""
        user = self.env.user
        accounts = self.search([("owner_user_id", "=", user.id)])
        action = {
            "type": "ir.actions.act_window",
            "name": self.env._("My E-mail Account"),
            "res_model": "email.account",
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "current",
            "context": {
                "default_owner_user_id": user.id,
                "default_allowed_senders": "owner",
                "default_name": user.name,
                "default_sender_name": user.name,
                "default_sender_email": user.email,
                "default_username": user.email,
            },
        }
        if len(accounts) == 1:
            action["res_id"] = accounts.id
        elif accounts:
            action.update(
                view_mode="list,form",
                views=[(False, "list"), (False, "form")],
                domain=[("owner_user_id", "=", user.id)],
            )
        return action

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

    def _tell_owner_of_check(self, result):
        """A check someone else ran for the owner: tell the owner, or close the case."""
        self.ensure_one()
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
            account._warn_owner(
                "\n".join(
                    (
                        translated._describe_sending_failure(result),
                        translated.env._(
                            "The mail stays in the queue as failed. Once the "
                            "account works (check it), press “Send Failed Mail "
                            "Again” on the account."
                        ),
                    )
                )
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
        open_activity = account.activity_ids.filtered(
            lambda activity: (
                activity.activity_type_id == activity_type and activity.user_id == owner
            )
        )[:1]
        if open_activity:
            open_activity.write({**values, "date_deadline": fields.Date.today()})
        else:
            account.activity_schedule(FAILURE_ACTIVITY, user_id=owner.id, **values)

    # --- End of personal accounts ----------------------------------------

    # Round trip: the test message in the mailbox, and the receivers' trust

    @api.depends("imap_host", "smtp_host")
    def _compute_imap_host_used(self):
        for account in self:
            account.imap_host_used = account.imap_host or guess_imap_host(
                account.smtp_host
            )

    @api.constrains("imap_host", "imap_port", "roundtrip_wait")
    def _check_delivery_settings(self):
        for account in self:
            host = account.imap_host or ""
            if host and (_CONTROL_CHARS.search(host) or not is_valid_host(host)):
                raise ValidationError(
                    self.env._(
                        "“%(host)s” is not a valid host name or IP address for "
                        "the IMAP server.",
                        host=host,
                    )
                )
            if not 1 <= account.imap_port <= 65535:
                raise ValidationError(
                    self.env._(
                        "The IMAP port must be between 1 and 65535 "
                        "(you entered %(port)s).",
                        port=account.imap_port,
                    )
                )
            if not MIN_ROUNDTRIP_WAIT <= account.roundtrip_wait <= MAX_ROUNDTRIP_WAIT:
                raise ValidationError(
                    self.env._(
                        "The wait for delivery must be between %(min)s and "
                        "%(max)s seconds (you entered %(wait)s).",
                        min=MIN_ROUNDTRIP_WAIT,
                        max=MAX_ROUNDTRIP_WAIT,
                        wait=account.roundtrip_wait,
                    )
                )

    @api.onchange("imap_encryption")
    def _onchange_imap_encryption(self):
        if self.imap_port in IMAP_DEFAULT_PORTS.values():
            self.imap_port = IMAP_DEFAULT_PORTS[self.imap_encryption]

    def _get_imap_settings(self):
        """The engine's view of the account's mailbox, its password decrypted.

        The IMAP login is the mailbox's user name and password. A pinned
        SMTP certificate is pinned for IMAP too when both are the same host:
        one self-hosted server usually serves both with one certificate.
        """
        self.ensure_one()
        smtp = self._get_smtp_settings()
        host = (self.imap_host_used or "").strip()
        same_host = host.lower() == (self.smtp_host or "").strip().lower()
        return ImapSettings(
            host=host,
            port=self.imap_port,
            encryption=self.imap_encryption,
            username=self.username or "",
            password=smtp.password,
            pinned_certificate=smtp.pinned_certificate if same_host else "",
            cafile=smtp.cafile,
        )

    def _check_delivery(self, results):
        """Follow each accepted test message into the account's mailbox.

        While the message travels, the sender domain's SPF and DMARC records
        are looked up; then the mailbox is searched until the message
        arrives or the account's wait runs out. The network part runs in
        parallel threads without a cursor, as the check itself does.
        """
        jobs = [
            (account, result, account._get_imap_settings())
            for account, result in zip(self, results, strict=True)
            if account.delivery_check and result.ok
        ]
        if not jobs:
            return
        nameserver = config.get(DNS_SERVER_OPTION) or None
        submitted = time.monotonic()

        def follow(account_values, result, settings):
            sender_email, smtp_host, wait, delete = account_values
            report = sender_domain_report(
                sender_email,
                smtp_host,
                nameserver=nameserver,
                timeout=min(wait / 2, 10),
            )
            found = find_message(
                settings,
                result.message_id,
                wait=max(wait - (time.monotonic() - submitted), 1),
                submitted=submitted,
                delete=delete,
            )
            return report, found

        workers = min(MAX_PARALLEL_CHECKS, len(jobs))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [
                pool.submit(
                    follow,
                    (
                        account.sender_email,
                        account.smtp_host,
                        account.roundtrip_wait,
                        account.roundtrip_delete,
                    ),
                    result,
                    settings,
                )
                for account, result, settings in jobs
            ]
            outcomes = [future.result() for future in futures]
        for (account, _result, _settings), (report, found) in zip(
            jobs, outcomes, strict=True
        ):
            account._store_delivery(found, report)

    def _store_delivery(self, found, report):
        self.ensure_one()
        delivery = self._describe_delivery(found)
        trust = self._describe_trust(found, report)
        verdicts = found.verdicts
        self.sudo().write(
            {
                "roundtrip_state": found.state,
                "roundtrip_seconds": found.arrival or 0.0,
                "roundtrip_message": delivery,
                "roundtrip_transcript": found.transcript,
                "trust_spf": verdicts["spf"].result if "spf" in verdicts else False,
                "trust_dkim": verdicts["dkim"].result if "dkim" in verdicts else False,
                "trust_dmarc": verdicts["dmarc"].result
                if "dmarc" in verdicts
                else False,
                "trust_level": self._trust_level(found, report),
                "trust_message": trust,
                # The notification of the check shows the whole story.
                "test_message": "\n\n".join(
                    part for part in (self.test_message, delivery, trust) if part
                ),
            }
        )
        self.message_post(
            body=plaintext2html(f"{delivery}\n\n{trust}"),
            subject=self.env._("Delivery check"),
            subtype_xmlid="mail.mt_note",
        )

    def _describe_delivery(self, found):
        """Translated: where the test message landed, when, and by which route."""
        _ = self.env._
        seconds = "%.1f" % (found.arrival or found.wait)
        if found.state == "inbox":
            lines = [
                _(
                    "The test message arrived in the inbox %(seconds)s seconds "
                    "after the server accepted it.",
                    seconds=seconds,
                )
            ]
        elif found.state == "junk":
            lines = [
                _(
                    "The test message arrived in the spam folder %(seconds)s "
                    "seconds after the server accepted it: the receiving "
                    "server does not trust it.",
                    seconds=seconds,
                )
            ]
        elif found.state == "not_found":
            lines = [
                _(
                    "The test message was not found in the inbox or the spam "
                    "folder within %(seconds)s seconds: the server accepted it "
                    "but has not delivered it.",
                    seconds=self.roundtrip_wait,
                )
            ]
        else:
            lines = [
                _(
                    "The delivery could not be checked: the step “%(step)s” failed.",
                    step=found.step_label(translate=_),
                )
            ]
            if hint := found.hint_text(translate=_):
                lines.append(hint)
        if found.hops:
            lines.append(_("Route of the message, hop by hop:"))
            lines.extend(f"{number}. {hop}" for number, hop in enumerate(found.hops, 1))
        if found.deleted:
            lines.append(_("The test message was deleted from the mailbox."))
        return "\n".join(lines)

    def _describe_trust(self, found, report):
        """Translated: the receiving server's verdicts and the DNS findings."""
        _ = self.env._
        lines = []
        if found.folder:
            lines.append(_("Verdicts of the receiving server:"))
            if not found.verdicts:
                lines.append(_(NO_VERDICTS))
            for method in TRUST_METHODS:
                verdict = found.verdicts.get(method)
                if verdict is None:
                    lines.append(_("%(method)s: not reported", method=method.upper()))
                    continue
                line = (
                    _(
                        "%(method)s: %(result)s (%(reason)s)",
                        method=method.upper(),
                        result=verdict.result,
                        reason=verdict.reason,
                    )
                    if verdict.reason
                    else _(
                        "%(method)s: %(result)s",
                        method=method.upper(),
                        result=verdict.result,
                    )
                )
                hint = VERDICT_HINTS.get((method, verdict.result))
                lines.append(f"{line} — {_(hint)}" if hint else line)
        lines.append(_("Sender domain %(domain)s:", domain=report.domain))
        lines.extend(finding.text(translate=_) for finding in report.findings)
        return "\n".join(lines)

    def _trust_level(self, found, report):
        levels = {report.level}
        if found.state == "junk":
            levels.add(PROBLEM)
        for method, result in VERDICT_HINTS:
            verdict = found.verdicts.get(method)
            if verdict is not None and verdict.result == result:
                levels.add(PROBLEM if result in ("fail", "permerror") else WARNING)
        if found.folder and not found.verdicts:
            levels.add(WARNING)
        for level in (PROBLEM, WARNING):
            if level in levels:
                return level
        return "ok"

    def _delivery_summary(self):
        """Short translated verdict of the last delivery check, or "".

        For the places where an account is picked (the outgoing mail server
        of a mailing, for one): "Delivered to Spam · At Risk".
        """
        self.ensure_one()
        if self.roundtrip_state == "untested":
            return ""
        labels = dict(self._fields["roundtrip_state"]._description_selection(self.env))
        parts = [labels[self.roundtrip_state]]
        if self.trust_level:
            trust = dict(self._fields["trust_level"]._description_selection(self.env))
            parts.append(trust[self.trust_level])
        return " · ".join(parts)

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
                failure = SmtpOutcome(ok=False, step=Step.AUTH, error="secret key")
                acting._store_check_result(failure, note=str(exc))
                if auto_commit:
                    self.env["ir.cron"]._commit_progress(1)
        if not jobs:
            return
        delivered = []
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
                if acting.delivery_check and result.ok:
                    delivered.append((acting, result))
        # Following the messages into the mailboxes comes once every send
        # is done, one account after the other.
        for acting, result in delivered:
            acting._check_delivery([result])

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
