"""The connection settings of one e-mail account, as the engine sees them."""

import contextlib
import ipaddress
import re
from dataclasses import dataclass, field

from .certificate import normalize_pin
from .xoauth2 import xoauth2_string

ENCRYPTIONS = ("none", "starttls", "ssl")
# A DNS label; underscores too, which DNS allows and internal names use.
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def is_valid_host(host):
    """A host name (IDNA allowed) or an IPv4/IPv6 address."""
    with contextlib.suppress(ValueError):
        return bool(ipaddress.ip_address(host))
    try:
        ascii_host = host.encode("idna").decode("ascii").rstrip(".")
    except UnicodeError:
        return False
    return 0 < len(ascii_host) <= 253 and all(
        _HOST_LABEL.match(label) for label in ascii_host.split(".")
    )


def check_server(settings):
    """Check the security and port of frozen ``settings``; normalize its pin."""
    if settings.encryption not in ENCRYPTIONS:
        raise ValueError(
            f"encryption must be one of {', '.join(ENCRYPTIONS)}, "
            f"not {settings.encryption!r}"
        )
    if isinstance(settings.port, bool) or not isinstance(settings.port, int):
        raise TypeError(f"port must be an integer, not {settings.port!r}")
    if not 0 < settings.port < 65536:
        raise ValueError(f"port must be between 1 and 65535, not {settings.port}")
    # Frozen: the normalized pin replaces the given one through object.
    pin = normalize_pin(settings.pinned_certificate)
    object.__setattr__(settings, "pinned_certificate", pin)


@dataclass(frozen=True)
class SmtpSettings:
    """Everything needed to reach an SMTP server and send as one account.

    ``timeout`` is a deadline in seconds for a whole exchange, from the name
    look-up to QUIT. Secrets stay out of ``repr()``, so it can be logged.
    ``pinned_certificate``, if set, is the SHA-256 fingerprint of the only
    certificate accepted (kept as 64 lower-case hex digits) instead of
    verification. With ``oauth_token`` set, ``username`` logs in by XOAUTH2.
    """

    host: str
    port: int = 25
    encryption: str = "none"
    timeout: float = 30.0
    auth_required: bool = False
    username: str = ""
    password: str = field(default="", repr=False)
    login: str = ""
    login_password: str = field(default="", repr=False)
    sender_name: str = ""
    sender_email: str = ""
    pinned_certificate: str = ""
    cafile: str | None = None
    local_hostname: str | None = None
    oauth_token: str = field(default="", repr=False)
    # A login over a connection without encryption is refused unless asked
    # for (a test server on loopback, say); accounts never ask for it.
    cleartext_login: bool = False

    def __post_init__(self):
        check_server(self)
        if not self.timeout > 0:
            raise ValueError(f"timeout must be positive, not {self.timeout!r}")

    def credentials(self) -> tuple[str, str] | None:
        """Return the ``(login, password)`` to log in with, or None if not needed."""
        if not self.auth_required:
            return None
        if self.oauth_token:
            return (self.username, self.oauth_token)
        if self.login:
            return (self.login, self.login_password)
        return (self.username, self.password)

    def secrets(self) -> tuple[str, ...]:
        """Return the non-empty passwords and tokens of these settings."""
        secrets = [self.password, self.login_password, self.oauth_token]
        if self.oauth_token:
            secrets.append(xoauth2_string(self.username, self.oauth_token))
        return tuple(secret for secret in secrets if secret)
