"""The ``email_account_rekey`` command; see "Key rotation" in the README."""

import logging
import sys

from odoo import SUPERUSER_ID, api
from odoo.cli import Command
from odoo.modules.registry import Registry
from odoo.tools import config

_logger = logging.getLogger(__name__)


class EmailAccountRekey(Command):
    """Re-encrypt the e-mail accounts' passwords and tokens with the newest key"""

    name = "email_account_rekey"
    epilog = (
        "The keys come from the option email_account_key, the variable "
        "EMAIL_ACCOUNT_KEY or the file email_account.key of the data "
        "directory, newest first. Every stored password and OAuth token is "
        "decrypted with any of them and encrypted again with the newest; then "
        "the older keys can be removed. If one cannot be decrypted, nothing is "
        "changed."
    )

    def run(self, cmdargs):
        config.parser.prog = self.prog
        config.parser.description = self.__doc__
        config.parser.epilog = self.epilog
        config.parse_config(cmdargs, setup_logging=True)
        dbnames = config["db_name"]
        if len(dbnames) != 1:
            sys.exit(f"{self.name}: name one database with -d DATABASE")
        dbname = dbnames[0]
        registry = Registry(dbname)
        if "email.account" not in registry:
            sys.exit(f"{self.name}: email_account is not installed in {dbname}")
        # Imported here: the addons path is known only once the
        # configuration has been read.
        from odoo.addons.email_account.tools import key_rotation

        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            try:
                count = key_rotation.reencrypt_secrets(env)
            except key_rotation.secret_box.SecretKeyError as exc:
                cr.rollback()
                sys.exit(f"{self.name}: {exc}. Nothing was re-encrypted.")
        _logger.info("Re-encrypted %s e-mail account secrets in %s", count, dbname)
        sys.stdout.write(
            f"{count} secret(s) re-encrypted with the newest key in {dbname}.\n"
        )
