"""Encryption of account secrets at rest.

Passwords are stored as Fernet tokens (AES-128-CBC with an HMAC-SHA256). The
key never lives in the database: it comes, in this order, from the
``email_account_key`` option of the Odoo configuration file, from the
``EMAIL_ACCOUNT_KEY`` environment variable, or from a key file that is created
once, readable by the Odoo user only, in Odoo's data directory. A database dump
alone therefore reveals no password.
"""

import contextlib
import logging
import os
import threading

from cryptography.fernet import Fernet, InvalidToken

from odoo.tools import config

_logger = logging.getLogger(__name__)

KEY_OPTION = "email_account_key"
KEY_ENVIRON = "EMAIL_ACCOUNT_KEY"
KEY_FILE_NAME = "email_account.key"

_lock = threading.Lock()


class SecretKeyError(Exception):
    """The key is missing or does not match the stored secret."""


def key_file_path():
    """Where the generated key lives when none is configured."""
    return os.path.join(config["data_dir"], KEY_FILE_NAME)


def _read_or_create_key_file(path):
    with _lock:
        with contextlib.suppress(FileNotFoundError), open(path, "rb") as key_file:
            return key_file.read().strip()
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        key = Fernet.generate_key()
        # O_EXCL: two workers starting together must not write two keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            with open(path, "rb") as key_file:
                return key_file.read().strip()
        with os.fdopen(fd, "wb") as key_file:
            key_file.write(key)
        _logger.info("Created the e-mail account key file %s", path)
        return key


def _fernet():
    key = config.get(KEY_OPTION) or os.environ.get(KEY_ENVIRON)
    if not key:
        key = _read_or_create_key_file(key_file_path())
    try:
        return Fernet(key)
    except ValueError as exc:
        raise SecretKeyError("the configured key is not a valid Fernet key") from exc


def encrypt(plain):
    """Return the token that stores ``plain``; empty stays empty."""
    if not plain:
        return False
    return _fernet().encrypt(plain.encode()).decode("ascii")


def decrypt(token):
    """Return the clear text behind ``token``; empty stays empty."""
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode("ascii")).decode()
    except InvalidToken as exc:
        raise SecretKeyError("the stored secret does not match the key") from exc
