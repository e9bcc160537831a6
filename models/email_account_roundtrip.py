"""The delivery check: the test message in the mailbox, and the receivers' trust."""

import time

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import config

from ..smtp_engine import roundtrip
from ..smtp_engine.settings import is_valid_host
from ..smtp_engine.trust_dns import OK, PROBLEM, WARNING, sender_domain_report
from .email_account import CONTROL_CHARS

# Option of the Odoo configuration file: the DNS server (address[:port]) to
# ask for the SPF and DMARC records of sender domains; default: the system's.
DNS_SERVER_OPTION = "email_account_dns_server"
MIN_ROUNDTRIP_WAIT = 5
MAX_ROUNDTRIP_WAIT = 300
# Verdicts of the receiving server, in the order they are shown.
TRUST_METHODS = ("spf", "dkim", "dmarc")
# The mailbox password also goes to the IMAP server.
IMAP_BINDING_FIELDS = ("imap_host", "imap_port", "imap_encryption")


class EmailAccountRoundTrip(models.Model):
    _inherit = "email.account"

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
        selection=[("none", "None"), ("starttls", "STARTTLS"), ("ssl", "SSL/TLS")],
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
        selection=[("ok", "Trusted"), ("warning", "Doubtful"), ("problem", "At Risk")],
        string="Receivers' Trust",
        copy=False,
        readonly=True,
        help="The worst of the receiving server's verdicts on the test "
        "message and of what the sender domain publishes in DNS.",
    )
    trust_message = fields.Text(string="Trust Verdict", copy=False, readonly=True)

    @api.depends("imap_host", "smtp_host")
    def _compute_imap_host_used(self):
        # The usual IMAP server of an SMTP server: smtp.x → imap.x, else the same.
        for account in self:
            host = (account.smtp_host or "").strip()
            if host.lower().startswith("smtp."):
                host = "imap." + host[5:]
            account.imap_host_used = account.imap_host or host

    @api.constrains("imap_host", "imap_port", "roundtrip_wait")
    def _check_delivery_settings(self):
        for account in self:
            host = account.imap_host
            if host and (CONTROL_CHARS.search(host) or not is_valid_host(host)):
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
        if self.imap_port in roundtrip.DEFAULT_PORTS.values():
            self.imap_port = roundtrip.DEFAULT_PORTS[self.imap_encryption]

    @api.onchange(*IMAP_BINDING_FIELDS)
    def _onchange_imap_secret_binding(self):
        return self._onchange_secret_binding()

    @api.model
    def _secret_binding_fields(self):
        return (*super()._secret_binding_fields(), *IMAP_BINDING_FIELDS)

    def _delivery_job(self, smtp):
        """Following the test message into the mailbox, needing no cursor.

        ``smtp``: the account's SMTP settings, whose password opens the mailbox
        too. The search lasts until the account's wait or ``end``.
        """
        self.ensure_one()
        host = (self.imap_host_used or "").strip()
        # A pinned SMTP certificate is pinned for IMAP too on the same host:
        # one self-hosted server usually serves both with one certificate.
        same_host = host.lower() == (self.smtp_host or "").strip().lower()
        settings = roundtrip.ImapSettings(
            host=host,
            port=self.imap_port,
            encryption=self.imap_encryption,
            username=self.username or "",
            password=smtp.password,
            pinned_certificate=smtp.pinned_certificate if same_host else "",
            cafile=smtp.cafile,
        )
        nameserver = config.get(DNS_SERVER_OPTION) or None
        wait, delete = self.roundtrip_wait, self.roundtrip_delete

        def follow(message_id, submitted, end, progress):
            # The sender domain's records are looked up while the message travels.
            report = sender_domain_report(
                smtp.sender_email,
                smtp.host,
                nameserver=nameserver,
                timeout=min(wait / 2, 10),
            )
            until = submitted + wait if end is None else min(submitted + wait, end)
            found = roundtrip.find_message(
                settings,
                message_id,
                wait=max(until - time.monotonic(), 1),
                submitted=submitted,
                delete=delete,
                progress=progress,
            )
            # How long the message was waited for, from its acceptance.
            found.wait = max(until - submitted, 1)
            return found, report

        return follow

    def _store_check_result(self, result, note=None, delivery=None):
        if self.delivery_check:
            self.sudo().write(self._delivery_values(delivery))
        return super()._store_check_result(result, note=note, delivery=delivery)

    def _check_story(self):
        story = super()._check_story()
        if self.delivery_check and self.roundtrip_state != "untested":
            story += [self.roundtrip_message, self.trust_message]
        return story

    def _delivery_values(self, delivery):
        """What the account stores of a delivery check ``(found, report)``; None
        (the server refused the test message) forgets the previous one.
        """
        if delivery is None:
            return {
                "roundtrip_state": "untested",
                "roundtrip_seconds": 0.0,
                "roundtrip_message": False,
                "roundtrip_transcript": False,
                "trust_spf": False,
                "trust_dkim": False,
                "trust_dmarc": False,
                "trust_level": False,
                "trust_message": False,
            }
        found, report = delivery
        verdicts = {method: v.result for method, v in found.verdicts.items()}
        return {
            "roundtrip_state": found.state,
            "roundtrip_seconds": found.arrival or 0.0,
            "roundtrip_message": self._describe_delivery(found),
            "roundtrip_transcript": found.transcript,
            "trust_spf": verdicts.get("spf", False),
            "trust_dkim": verdicts.get("dkim", False),
            "trust_dmarc": verdicts.get("dmarc", False),
            "trust_level": self._trust_level(found, report),
            "trust_message": self._describe_trust(found, report),
        }

    def _send_search_progress(self, waited):
        """Tell who asked for the check how long its message was waited for."""
        self.ensure_one()
        self.check_requested_by._bus_send(
            "simple_notification",
            {
                "type": "info",
                "title": self.env._("Checking “%(account)s”", account=self.name),
                "message": self.env._(
                    "The server accepted the test message. Looking for it in "
                    "the mailbox: %(seconds)s of %(wait)s seconds.",
                    seconds=int(waited),
                    wait=self.roundtrip_wait,
                ),
            },
        )

    def _describe_delivery(self, found):
        """Translated: where the test message landed, when, and by which route."""
        _ = self.env._
        seconds = "%.1f" % (found.arrival or found.wait)
        if found.state == "inbox":
            headline = _(
                "The test message arrived in the inbox %(seconds)s seconds "
                "after the server accepted it.",
                seconds=seconds,
            )
        elif found.state == "junk":
            headline = _(
                "The test message arrived in the spam folder %(seconds)s "
                "seconds after the server accepted it: the receiving "
                "server does not trust it.",
                seconds=seconds,
            )
        elif found.state == "not_found":
            headline = _(
                "The test message was not found in the inbox or the spam "
                "folder within %(seconds)s seconds: the server accepted it "
                "but has not delivered it.",
                seconds=round(found.wait),
            )
        else:
            headline = _(
                "The delivery could not be checked: the step “%(step)s” failed.",
                step=found.step_label(translate=_),
            )
        lines = [headline]
        if found.state == "not_found" and round(found.wait) < self.roundtrip_wait:
            lines.append(
                _(
                    "The search stopped there, the longest that a check in "
                    "the background may take on this server (the account "
                    "waits %(wait)s seconds).",
                    wait=self.roundtrip_wait,
                )
            )
        elif not found.ok and (hint := found.hint_text(translate=_)):
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
                lines.append(_(roundtrip.NO_VERDICTS))
            for method in TRUST_METHODS:
                verdict = found.verdicts.get(method)
                if verdict is None:
                    lines.append(_("%(method)s: not reported", method=method.upper()))
                    continue
                params = {"method": method.upper(), "result": verdict.result}
                if verdict.reason:
                    line = _(
                        "%(method)s: %(result)s (%(reason)s)",
                        **params,
                        reason=verdict.reason,
                    )
                else:
                    line = _("%(method)s: %(result)s", **params)
                hint = roundtrip.VERDICT_HINTS.get((method, verdict.result))
                lines.append(f"{line} — {_(hint)}" if hint else line)
        lines.append(_("Sender domain %(domain)s:", domain=report.domain))
        lines.extend(finding.text(translate=_) for finding in report.findings)
        return "\n".join(lines)

    def _trust_level(self, found, report):
        levels = {report.level}
        if found.state == "junk":
            levels.add(PROBLEM)
        for method, verdict in found.verdicts.items():
            if (method, verdict.result) in roundtrip.VERDICT_HINTS:
                failed = verdict.result in ("fail", "permerror")
                levels.add(PROBLEM if failed else WARNING)
        if found.folder and not found.verdicts:
            levels.add(WARNING)
        return next((level for level in (PROBLEM, WARNING) if level in levels), OK)

    def _delivery_summary(self):
        """Short verdict of the last delivery check, or "": for the places where
        an account is picked, "Delivered to Spam · At Risk".
        """
        self.ensure_one()
        if self.roundtrip_state == "untested":
            return ""
        return " · ".join(
            self._fields[name].convert_to_export(self[name], self)
            for name in ("roundtrip_state", "trust_level")
            if self[name]
        )
