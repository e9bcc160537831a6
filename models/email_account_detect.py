"""Setting an account up from its sender address."""

import logging

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import config, single_email_re

from ..smtp_engine import detect
from ..smtp_engine.trust_dns import nameserver_resolver
from .email_account import CA_FILE_OPTION, DEFAULT_TIMEOUT

_logger = logging.getLogger(__name__)


def _settings_key(values):
    """``host:port/security`` of an account, or of its field values."""
    host, port = values["smtp_host"], values["smtp_port"]
    return f"{host}:{port}/{values['smtp_encryption']}"


class EmailAccountDetect(models.Model):
    _inherit = "email.account"

    # Where the settings came from, valid while they are those found.
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

    # What detection finds is applied as if typed: the onchange of the sender
    # address fills an empty server; the button overwrites it and, through
    # write(), drops the stored passwords as any change of server does.

    @api.depends("smtp_host", "smtp_port", "smtp_encryption", "smtp_detected_for")
    def _compute_smtp_settings_detected(self):
        for account in self:
            key = _settings_key(account)
            account.smtp_settings_detected = account.smtp_detected_for == key

    @api.onchange("smtp_encryption")
    def _onchange_smtp_encryption(self):
        # A port found together with its security (25 with STARTTLS) stays.
        if not self.smtp_settings_detected:
            return super()._onchange_smtp_encryption()

    @api.onchange("sender_email")
    def _onchange_sender_email_detect(self):
        """Fill the server from a new sender address; never overwrite a typed one."""
        if self.smtp_host or not single_email_re.match(self.sender_email or ""):
            return None
        self.update(self._detected_values())
        if self.smtp_detected_source:
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
        self.write(self._detected_values())
        found = self.smtp_detected_source
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": self.env._("Settings found")
                if found
                else self.env._("No settings found"),
                "message": self.smtp_detected_note,
                "type": "success" if found else "warning",
                "sticky": not found,
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def _detected_values(self):
        """The settings found from the sender address, as field values."""
        self.check_access("write" if self.id else "create")
        try:
            detection = detect.detect_settings(
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
        # What was tried, for the administrator who wonders why.
        _logger.info(
            "Settings detection for %s, %.1f s: %s",
            detection.domain,
            detection.elapsed,
            "; ".join(detection.log),
        )
        values = {"smtp_detected_note": detection.describe(translate=self.env._)}
        found = detection.settings
        if found is None:
            return values | {"smtp_detected_source": False, "smtp_detected_for": False}
        values |= {
            "smtp_host": found.host,
            "smtp_port": found.port,
            "smtp_encryption": found.encryption,
            "smtp_detected_source": found.source,
        }
        return values | {"smtp_detected_for": _settings_key(values)}

    @api.model
    def _detect_options(self):
        """Where detection looks: the ``email_account.detect_*`` parameters
        (README, "Setting an account up from its address"), else the public sources.
        """
        params = self.env["ir.config_parameter"].sudo()

        def words(key):
            return tuple(params.get_param(f"email_account.detect_{key}", "").split())

        nameservers = words("nameservers")
        ispdb_url = params.get_param("email_account.detect_ispdb_url", detect.ISPDB_URL)
        probe = [word.partition("/") for word in words("probe")]
        combinations = tuple((int(port), security) for port, _slash, security in probe)
        return detect.DetectOptions(
            resolver=nameserver_resolver(nameservers) if nameservers else None,
            autoconfig_urls=words("autoconfig_urls") or detect.AUTOCONFIG_URLS,
            ispdb_url="" if ispdb_url == "off" else ispdb_url,
            probe_hosts=words("probe_hosts") or detect.PROBE_HOSTS,
            probe_combinations=combinations or detect.PROBE_COMBINATIONS,
            cafile=config.get(CA_FILE_OPTION) or None,
        )
