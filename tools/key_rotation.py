"""Re-encrypt every stored secret with the newest key, so that older keys can go."""

from . import secret_box


class UndecryptableSecretError(secret_box.SecretKeyError):
    """A stored secret that no key decrypts: nothing was re-encrypted."""

    def __init__(self, account, field_name):
        super().__init__(
            f"the secret {field_name} of the e-mail account {account.name!r} "
            f"(id {account.id}) cannot be decrypted by any of the keys"
        )
        self.account = account


def reencrypt_secrets(env):
    """Re-encrypt every account's secrets, archived and of all companies.

    Return how many. All or nothing: ``UndecryptableSecretError`` before any write.
    """
    accounts = (
        env["email.account"]
        .sudo()
        .with_context(active_test=False, tracking_disable=True)
        .search([], order="id")
    )
    columns = accounts._secret_columns()
    new_tokens = {}
    for account in accounts:
        for field_name in columns:
            if token := account[field_name]:
                try:
                    new_tokens[account, field_name] = secret_box.reencrypt(token)
                except secret_box.WrongKeyError as exc:
                    raise UndecryptableSecretError(account, field_name) from exc
    for (account, field_name), new_token in new_tokens.items():
        account.write({field_name: new_token})
    env.flush_all()
    return len(new_tokens)
