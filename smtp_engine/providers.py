"""Presets of the common mail providers (from their own help pages and
Mozilla's ISP database), and what each needs from the user."""

from dataclasses import dataclass
from typing import NamedTuple

from .texts import _lt


class Server(NamedTuple):
    """An outgoing server as the provider documents it."""

    host: str
    port: int
    encryption: str


@dataclass(frozen=True)
class Provider:
    """A mail provider; without a sure ``smtp``, its ``probe_hosts`` are tried."""

    key: str
    name: str
    domains: tuple[str, ...] = ()
    mx_suffixes: tuple[str, ...] = ()
    smtp: Server | None = None
    probe_hosts: tuple[str, ...] = ()
    note: str = ""

    def matches_mx(self, exchange):
        exchange = exchange.rstrip(".").lower()
        return any(
            exchange == suffix or exchange.endswith("." + suffix)
            for suffix in self.mx_suffixes
        )


GREEK_ISP_NOTE = _lt(
    "The outgoing server of this provider was not taken from its "
    "documentation but found by trying its servers. Check it against the "
    "provider's instructions; some providers accept mail on port 25 only "
    "from their own network."
)

# Zoho's two data centres need the same.
ZOHO_NOTE = _lt(
    "Zoho Mail: SMTP access must be allowed in the mail settings, "
    "and with two-factor authentication Zoho accepts only an "
    "application-specific password."
)

PROVIDERS = (
    Provider(
        key="google",
        name="Gmail / Google Workspace",
        domains=("gmail.com", "googlemail.com"),
        # aspmx.l.google.com, gmail-smtp-in.l.google.com, smtp.google.com.
        mx_suffixes=("google.com", "googlemail.com"),
        smtp=Server("smtp.gmail.com", 465, "ssl"),
        note=_lt(
            "Google accepts only an app password here, not the account's "
            "own password: turn on 2-Step Verification and create an app "
            "password (Google Account › Security › App passwords). The user "
            "name is the full address. In Google Workspace the administrator "
            "may have to allow it."
        ),
    ),
    Provider(
        key="microsoft365",
        name="Microsoft 365",
        domains=("onmicrosoft.com",),
        # <tenant>-<tld>.mail.protection.outlook.com
        mx_suffixes=("mail.protection.outlook.com",),
        smtp=Server("smtp.office365.com", 587, "starttls"),
        note=_lt(
            "Microsoft 365 sends for a mailbox only when Authenticated SMTP "
            "(SMTP AUTH) is turned on for it (Microsoft 365 admin centre › "
            "the user › Mail › Manage email apps), and security defaults or "
            "multi-factor authentication may refuse a password login. The "
            "user name is the full address. Microsoft is retiring password "
            "logins for SMTP: ask your administrator whether yours still "
            "accepts them."
        ),
    ),
    Provider(
        key="outlook",
        name="Outlook.com",
        domains=(
            "outlook.com",
            "outlook.com.gr",
            "hotmail.com",
            "hotmail.gr",
            "live.com",
            "msn.com",
        ),
        # outlook-com.olc.protection.outlook.com
        mx_suffixes=("olc.protection.outlook.com",),
        smtp=Server("smtp-mail.outlook.com", 587, "starttls"),
        note=_lt(
            "Outlook.com: with two-step verification turned on, log in with "
            "an app password (Microsoft account › Security). Microsoft is "
            "retiring password logins for SMTP in favour of modern "
            "authentication, so they may be refused."
        ),
    ),
    Provider(
        key="yahoo",
        name="Yahoo Mail",
        domains=("yahoo.com", "yahoo.gr", "ymail.com", "rocketmail.com"),
        mx_suffixes=("yahoodns.net",),
        smtp=Server("smtp.mail.yahoo.com", 465, "ssl"),
        note=_lt(
            "Yahoo Mail accepts only an app password here: create one in "
            "the account's security settings (Account info › Account "
            "security › Generate app password). The user name is the full "
            "address."
        ),
    ),
    Provider(
        key="icloud",
        name="iCloud Mail",
        domains=("icloud.com", "me.com", "mac.com"),
        mx_suffixes=("mail.icloud.com",),
        smtp=Server("smtp.mail.me.com", 587, "starttls"),
        note=_lt(
            "iCloud Mail accepts only an app-specific password here (Apple "
            "Account › Sign-In and Security › App-Specific Passwords). The "
            "user name is the full iCloud address."
        ),
    ),
    Provider(
        key="zoho_eu",
        name="Zoho Mail (EU)",
        domains=("zoho.eu", "zohomail.eu"),
        mx_suffixes=("zoho.eu",),
        smtp=Server("smtp.zoho.eu", 465, "ssl"),
        note=ZOHO_NOTE,
    ),
    Provider(
        key="zoho",
        name="Zoho Mail",
        domains=("zoho.com", "zohomail.com"),
        mx_suffixes=("zoho.com",),
        smtp=Server("smtp.zoho.com", 465, "ssl"),
        note=ZOHO_NOTE,
    ),
    # The Greek providers' pages change with every merger: only the mailbox
    # domains known for sure are recognised, and the probe finds what answers.
    # OTE's mailgate.otenet.gr is a probe host, not a preset: whether it takes
    # authenticated mail from outside OTE's network is not certain.
    Provider(
        key="cosmote",
        name="Cosmote (OTEnet)",
        domains=("otenet.gr",),
        mx_suffixes=("otenet.gr",),
        probe_hosts=("mailgate.otenet.gr",),
        note=GREEK_ISP_NOTE,
    ),
    Provider(
        key="nova",
        name="Nova (Forthnet)",
        domains=("forthnet.gr",),
        mx_suffixes=("forthnet.gr",),
        note=GREEK_ISP_NOTE,
    ),
    Provider(
        key="vodafone_gr",
        name="Vodafone Greece (HOL)",
        domains=("hol.gr",),
        mx_suffixes=("hol.gr",),
        note=GREEK_ISP_NOTE,
    ),
    Provider(
        key="cyta_gr",
        name="Cyta Hellas",
        domains=("cyta.gr",),
        mx_suffixes=("cyta.gr",),
        note=GREEK_ISP_NOTE,
    ),
)


def provider_for_domain(domain):
    """Return the provider whose mailboxes have addresses at ``domain``."""
    domain = domain.rstrip(".").lower()
    return next((p for p in PROVIDERS if domain in p.domains), None)


def provider_for_mx(exchanges):
    """Return the provider of the first mail exchanger that one recognises."""
    return next((p for e in exchanges for p in PROVIDERS if p.matches_mx(e)), None)


def provider_for_host(host):
    """Return the provider whose documented outgoing server is ``host``."""
    host = host.rstrip(".").lower()
    return next((p for p in PROVIDERS if p.smtp and p.smtp.host == host), None)
