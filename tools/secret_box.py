"""Account secrets encrypted at rest, with keys kept outside the database."""

import contextlib
import logging
import os
import stat
import tempfile

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from odoo.tools import config

_logger = logging.getLogger(__name__)

KEY_OPTION = "email_account_key"
KEY_ENVIRON = "EMAIL_ACCOUNT_KEY"
KEY_FILE_NAME = "email_account.key"


class SecretKeyError(Exception):
    """No usable key, or a stored secret that no key decrypts."""


class KeyMissingError(SecretKeyError):
    """There is no key anywhere, and decrypting must not create one."""


class KeyFileRefusedError(SecretKeyError):
    """The key file may be read or changed by others: it is not used."""

    def __init__(self, path, reason):
        super().__init__(f"the key file {path} is refused: {reason}")
        self.path = path


class InvalidKeyError(SecretKeyError):
    """A configured key is not a Fernet key."""


class WrongKeyError(SecretKeyError):
    """No key decrypts the stored secret."""


def key_file_path():
    """Where the key file is looked for, and created when there is no key."""
    return os.path.join(config["data_dir"], KEY_FILE_NAME)


def _parse_keys(text, separator, where):
    entries = (entry.strip() for entry in text.split(separator))
    keys = [entry for entry in entries if entry and not entry.startswith("#")]
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except ValueError as exc:
            # Never the key itself in a message: it may be a typo of a real one.
            error = InvalidKeyError(
                f"key number {position} of {where} is not a valid Fernet key"
            )
            _logger.error("The e-mail account keys cannot be used: %s", error)
            raise error from exc
    return fernets


def _check_key_file(path, status):
    """Raise ``KeyFileRefusedError`` unless only the Odoo user owns ``path``."""
    if not stat.S_ISREG(status.st_mode):
        raise KeyFileRefusedError(path, "it is not a regular file")
    if os.name != "posix":
        return
    if status.st_uid != os.geteuid():
        raise KeyFileRefusedError(
            path,
            f"it belongs to the user id {status.st_uid}, not to the user Odoo "
            f"runs as (id {os.geteuid()})",
        )
    if status.st_mode & 0o077:
        raise KeyFileRefusedError(
            path,
            f"its permissions {stat.S_IMODE(status.st_mode):04o} let other "
            f"users read or change it; run: chmod 600 {path}",
        )


def _read_key_file(path):
    """Return the keys of the file at ``path``, or ``None`` if there is none."""
    try:
        with open(path, "rb") as key_file:
            # The status of the file actually read, not of whatever the
            # path leads to a moment later.
            status = os.fstat(key_file.fileno())
            content = key_file.read().decode("ascii", errors="replace")
        _check_key_file(path, status)
    except FileNotFoundError:
        return None
    except KeyFileRefusedError as exc:
        refusal = exc
    except OSError as exc:
        # Such as the file of another user that Odoo may not even read.
        refusal = KeyFileRefusedError(path, f"it cannot be read ({exc.strerror})")
    else:
        return _parse_keys(content, "\n", f"the key file {path}")
    _logger.error("The e-mail account keys are not used: %s", refusal)
    raise refusal


def _fsync_folder(folder):
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_key_file(path):
    """Create the key file with a new key, unless another process just did.

    The key is synced in a temporary file (mode 0600) of the same folder, then
    hard-linked to its name: a link never replaces a file, and readers see no
    file or the whole one. The first to link wins; all return its keys.
    """
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd, temp_path = tempfile.mkstemp(prefix=f".{KEY_FILE_NAME}.", dir=folder)
    try:
        with os.fdopen(fd, "wb") as temp_file:
            temp_file.write(Fernet.generate_key() + b"\n")
            temp_file.flush()
            os.fsync(temp_file.fileno())
        # If another process was first, its key is the key.
        with contextlib.suppress(FileExistsError):
            os.link(temp_path, path)
            _fsync_folder(folder)
            _logger.info("Created the e-mail account key file %s", path)
    finally:
        os.unlink(temp_path)
    fernets = _read_key_file(path)
    if not fernets:
        raise KeyMissingError(f"the key file {path} vanished or is empty")
    return fernets


def _load_keys(create=False):
    """Return the keys, newest first; ``create`` the key file if there is none."""
    for text, where in (
        (config.get(KEY_OPTION), f"the option {KEY_OPTION}"),
        (os.environ.get(KEY_ENVIRON), f"the variable {KEY_ENVIRON}"),
    ):
        if text and text.strip():
            return _parse_keys(text, ",", where)
    path = key_file_path()
    fernets = _read_key_file(path)
    if fernets:
        return fernets
    # Never created to decrypt: a lost key must show up as an error, not be
    # replaced by a new one that decrypts nothing.
    if fernets is None and create:
        return _create_key_file(path)
    raise KeyMissingError(
        f"no key in the option {KEY_OPTION}, the variable {KEY_ENVIRON} "
        f"or the file {path}"
    )


def encrypt(plain):
    """Return the token of ``plain`` under the newest key; empty stays empty."""
    if not plain:
        return False
    return _load_keys(create=True)[0].encrypt(plain.encode()).decode("ascii")


def decrypt(token):
    """Return the clear text behind ``token``; empty stays empty."""
    if not token:
        return ""
    try:
        return MultiFernet(_load_keys()).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError) as exc:
        raise WrongKeyError("no key decrypts the stored secret") from exc


def reencrypt(token):
    """Return ``token`` encrypted again with the newest key."""
    try:
        return MultiFernet(_load_keys()).rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError) as exc:
        raise WrongKeyError("no key decrypts the stored secret") from exc


def check_keys(secrets_stored):
    """Log at start what is wrong with the keys; no key only if ``secrets_stored``."""
    try:
        _load_keys()
    except KeyMissingError as exc:
        if secrets_stored:
            _logger.error(
                "Passwords of e-mail accounts are stored but their key is "
                "missing (%s): restore it from your backup.",
                exc,
            )
    except SecretKeyError:
        # Invalid keys and refused files are logged where they are found.
        return
