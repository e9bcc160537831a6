"""The connection settings of one e-mail account, as the engine sees them."""

from dataclasses import dataclass, field

from .certificate import normalize_pin
from .xoauth2 import xoauth2_string

ENCRYPTIONS = ("none", "starttls", "ssl")


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
    look-up to QUIT. Passwords are left out of ``repr()`` so that the object
    can be logged safely. ``pinned_certificate`` is empty (the certificate
    and host name are verified against the system's authorities and
    ``cafile``) or the SHA-256 fingerprint of the server's certificate, the
    only one then accepted; it is kept as 64 lower-case hex digits.
    ``oauth_token`` is an OAuth 2.0 access token: when set, the engine logs
    in as ``username`` with XOAUTH2 instead of a password.
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
        """Return the ``(login, password)`` pair to log in with, or None.

        None when the server does not require authentication; the separate
        login and its password when a separate login is set; otherwise the
        account's user name and password.
        """
        if not self.auth_required:
            return None
        if self.oauth_token:
            return (self.username, self.oauth_token)
        if self.login:
            return (self.login, self.login_password)
        return (self.username, self.password)

    def secrets(self) -> tuple[str, ...]:
        """Return the non-empty passwords and tokens of these settings."""
        oauth = (
            (self.oauth_token, xoauth2_string(self.username, self.oauth_token))
            if self.oauth_token
            else ()
        )
        return tuple(s for s in (self.password, self.login_password, *oauth) if s)
