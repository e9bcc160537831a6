"""Microsoft 365 and Google accounts: OAuth 2.0 sign-in through core's flows."""

import base64
import dataclasses
import json
from datetime import datetime, timedelta, timezone

import requests

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import email_normalize
from odoo.tools.misc import hmac

from ..smtp_engine import HINTS
from ..tools import secret_box
from .email_account import TOKEN_COLUMN

# OAuth 2.0: the providers' documented servers, and what binds the tokens.
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
    # the mixins' field: our encrypted column
    "microsoft_outlook_refresh_token": "oauth_refresh_secret",
    "microsoft_outlook_access_token": "oauth_access_secret",
    "google_gmail_refresh_token": "oauth_refresh_secret",
    "google_gmail_access_token": "oauth_access_secret",
}
OAUTH_EXPIRATION_FIELDS = (
    "microsoft_outlook_access_token_expiration",
    "google_gmail_access_token_expiration",
)
OAUTH_SECRETS = ("oauth_refresh_secret", "oauth_access_secret")
OAUTH_CLEARED = ("oauth_expiration", "oauth_mailbox")
_WRITE_ONLY_TOKEN = {
    "compute": "_compute_oauth_tokens",
    "inverse": "_inverse_oauth_tokens",
    "store": False,
}
# Renew an access token that expires within this many seconds: the time
# to renew it and to open the session, as core's mixins allow.
OAUTH_EXPIRY_MARGIN = 10


def _utc_datetime(timestamp):
    """A POSIX timestamp as a naive UTC datetime, as the ORM stores them."""
    return datetime.fromtimestamp(int(timestamp), timezone.utc).replace(tzinfo=None)


class EmailAccountOauth(models.Model):
    _name = "email.account"
    _inherit = ["email.account", "microsoft.outlook.mixin", "google.gmail.mixin"]
    # What the mixins' sign-in asks for, and the mailbox it suggests.
    _OUTLOOK_SCOPE = "https://outlook.office.com/SMTP.Send"
    _email_field = "username"

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
    oauth_refresh_secret = fields.Char("Encrypted Refresh Token", **TOKEN_COLUMN)
    oauth_access_secret = fields.Char("Encrypted Access Token", **TOKEN_COLUMN)
    # The mixins' plain token columns become write-only views of the
    # encrypted ones: their sign-in flows write the tokens here, and no
    # token is ever read back from them (see _oauth_access_token).
    microsoft_outlook_refresh_token = fields.Char(**_WRITE_ONLY_TOKEN)
    microsoft_outlook_access_token = fields.Char(**_WRITE_ONLY_TOKEN)
    microsoft_outlook_access_token_expiration = fields.Integer(**_WRITE_ONLY_TOKEN)
    google_gmail_refresh_token = fields.Char(**_WRITE_ONLY_TOKEN)
    google_gmail_access_token = fields.Char(**_WRITE_ONLY_TOKEN)
    google_gmail_access_token_expiration = fields.Integer(**_WRITE_ONLY_TOKEN)

    # Core's mixins run the sign-in, its callback and the token requests;
    # the account keeps the tokens encrypted, bound like its passwords.

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

    def _secret_columns(self):
        return [*super()._secret_columns(), *OAUTH_SECRETS]

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

    def write(self, vals):
        # Core's sign-in callbacks also write "active": True, which would
        # bring an archived account back to sending.
        if vals.get("active") and OAUTH_TOKEN_FIELDS.keys() & vals.keys():
            vals = {name: value for name, value in vals.items() if name != "active"}
        return super().write(vals)

    def _moved_secrets(self, vals):
        # The sign-in first: its note has always come before the password's.
        binding = (*self._secret_binding_fields(), "smtp_authentication")
        moved = self._moved_away(vals, binding).filtered("oauth_connected")
        note = self.env._(
            "The sign-in was disconnected because the server, port, "
            "security, user name or authentication changed. Connect "
            "the account again."
        )
        forget = (moved, OAUTH_SECRETS, OAUTH_CLEARED, note)
        return [forget, *super()._moved_secrets(vals)]

    def _oauth_forget(self, note):
        self._forget_secrets(OAUTH_SECRETS, note, cleared=OAUTH_CLEARED)

    def _oauth_login(self):
        self.ensure_one()
        return self.username or self.sender_email or ""

    def action_oauth_connect(self):
        """Sign in to the account's mailbox with the provider's own flow."""
        self.ensure_one()
        self.check_access("write")
        if self.smtp_authentication not in OAUTH_SERVERS:
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

    def _bind_csrf_token(self, token):
        # Core's token is the same for every user and never expires; bound
        # to the user, a sign-in can be completed only by who started it.
        return hmac(self.env(su=True), "email_account_oauth", (token, self.env.uid))

    def _get_outlook_csrf_token(self):
        return self._bind_csrf_token(super()._get_outlook_csrf_token())

    def _get_gmail_csrf_token(self):
        return self._bind_csrf_token(super()._get_gmail_csrf_token())

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

        The ID token comes straight from the provider's token endpoint over
        TLS: as in core's flows, its claims need no signature check.
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

    def _get_smtp_settings(self):
        """A valid access token instead of the passwords, for OAuth accounts."""
        settings = super()._get_smtp_settings()
        if self.smtp_authentication not in OAUTH_SERVERS:
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
        """A valid access token, renewed through the mixin if needed."""
        self.ensure_one()
        stored = self.sudo()
        provider = self._fields["smtp_authentication"].convert_to_export(
            self.smtp_authentication, self
        )
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
        needed_until = fields.Datetime.now() + timedelta(seconds=OAUTH_EXPIRY_MARGIN)
        if access_token and expiration and expiration > needed_until:
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
            # Through a name: Odoo's exporter takes a literal inside _() for
            # a text, and the key is not one (texts.py's entry is).
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
