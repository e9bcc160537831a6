"""The private smtplib names the session relies on are still what it expects."""

import inspect
import smtplib

import pytest

from smtp_engine.connection import SMTPLIB_PRIVATE_NAMES

# Where smtplib uses each name, and how.
USES = {
    "_get_socket": (smtplib.SMTP.connect, "self._get_socket(host, port, self.timeout)"),
    "_host": (smtplib.SMTP.starttls, "server_hostname=self._host"),
    "_auth_challenge_count": (smtplib.SMTP.auth_login, "self._auth_challenge_count"),
}


def test_every_private_name_is_checked():
    assert set(SMTPLIB_PRIVATE_NAMES) == set(USES)


@pytest.mark.parametrize("name", SMTPLIB_PRIVATE_NAMES)
def test_smtplib_still_uses_the_name(name):
    method, use = USES[name]

    assert use in inspect.getsource(method)


def test_replies_are_still_read_line_by_line_from_file():
    assert "self.file.readline(" in inspect.getsource(smtplib.SMTP.getreply)
