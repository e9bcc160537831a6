"""The server's certificate: its pin and what it says about itself."""

import datetime
import hashlib
import ssl
from dataclasses import dataclass

from cryptography import x509


class CertificateChangedError(ssl.SSLError):
    """The server's certificate is not the pinned one; ``der`` is the one seen."""

    def __init__(self, der, pin):
        self.der = der
        seen = format_fingerprint(fingerprint(der))
        super().__init__(
            f"server certificate SHA-256 {seen} is not the "
            f"pinned {format_fingerprint(pin)}"
        )


def normalize_pin(pin):
    """Return a SHA-256 fingerprint as 64 lower-case hex digits, or "".

    Colons, spaces and case are ignored; anything else raises ``ValueError``.
    """
    digits = "".join((pin or "").replace(":", "").split()).lower()
    if digits and (len(digits) != 64 or not set(digits) <= set("0123456789abcdef")):
        raise ValueError(
            "pinned_certificate must be a SHA-256 fingerprint: 64 hex digits"
        )
    return digits


def format_fingerprint(digits):
    """Return hex digits as colon-separated upper-case pairs."""
    return ":".join(digits[i : i + 2] for i in range(0, len(digits), 2)).upper()


def fingerprint(der):
    """Return the SHA-256 of a DER certificate, as lower-case hex."""
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class CertificateDetails:
    """What a server's certificate says, read without trusting it.

    ``fingerprint`` is shown as colon-separated upper-case hex; the other
    fields are empty if the certificate could not be parsed.
    """

    fingerprint: str
    subject: str = ""
    issuer: str = ""
    not_before: datetime.datetime | None = None
    not_after: datetime.datetime | None = None
    alt_names: tuple[str, ...] = ()

    @classmethod
    def from_der(cls, der):
        shown = format_fingerprint(fingerprint(der))
        try:
            cert = x509.load_der_x509_certificate(der)
            return cls(
                fingerprint=shown,
                subject=cert.subject.rfc4514_string(),
                issuer=cert.issuer.rfc4514_string(),
                not_before=_utc(cert, "not_valid_before"),
                not_after=_utc(cert, "not_valid_after"),
                alt_names=_alt_names(cert),
            )
        # An untrusted server's certificate may be broken in any way, and its
        # details only help: the fingerprint is always there.
        except Exception:  # noqa: BLE001
            return cls(fingerprint=shown)


def _utc(cert, name):
    # cryptography 42 added the aware ``*_utc`` properties and deprecated the
    # naive ones, which older versions (3.4 and up are supported) only have.
    aware = getattr(cert, f"{name}_utc", None)
    if aware is not None:
        return aware
    return getattr(cert, name).replace(tzinfo=datetime.timezone.utc)


def _alt_names(cert):
    try:
        names = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(
        [f"DNS:{name}" for name in names.get_values_for_type(x509.DNSName)]
        + [f"IP:{ip}" for ip in names.get_values_for_type(x509.IPAddress)]
    )
