"""Re-encryption of every stored secret with the newest key.

After a new key is put first (see ``secret_box``), old tokens still decrypt
with the older keys; ``reencrypt_secrets`` makes every token depend on the
newest key only, so that the older ones can be removed. The
``email_account_rekey`` command of the addon runs it on a database.
"""

from . import secret_box

# The token columns of email.account, as secret_box stores them.
TOKEN_FIELDS = ("password_token", "smtp_password_token")


class UndecryptableSecretError(secret_box.SecretKeyError):
    """A stored secret that no key decrypts: nothing was re-encrypted."""

    def __init__(self, account, field_name):
        super().__init__(
            f"the secret {field_name} of the e-mail account {account.name!r} "
            f"(id {account.id}) cannot be decrypted by any of the keys"
        )
        self.account = account
        self.field_name = field_name


def reencrypt_secrets(env):
    """Encrypt every stored secret again with the newest key.

    Archived accounts and all companies included. All or nothing: if a
    token cannot be decrypted, ``UndecryptableSecretError`` is raised
    before anything is written.

    :return: the number of secrets re-encrypted
    """
    accounts = (
        env["email.account"]
        .sudo()
        .with_context(active_test=False, tracking_disable=True)
        .search([], order="id")
    )
    # All decrypted before any is written.
    new_tokens = {}
    for account in accounts:
        for field_name in TOKEN_FIELDS:
            if token := account[field_name]:
                try:
                    new_tokens[account, field_name] = secret_box.reencrypt(token)
                except secret_box.WrongKeyError as exc:
                    raise UndecryptableSecretError(account, field_name) from exc
    for (account, field_name), new_token in new_tokens.items():
        account.write({field_name: new_token})
    env.flush_all()
    return len(new_tokens)
