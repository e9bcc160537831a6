"""The encryption keys of the passwords: where they come from, how the key
file is created and guarded, what a missing key does, and key rotation.

Every test works in a data directory of its own, with no key in the Odoo
configuration nor in the environment, so that it never touches the real key.
"""

import contextlib
import os
import stat
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest.mock import patch

from cryptography.fernet import Fernet

import odoo
from odoo.cli.command import find_command
from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools import config

from odoo.addons.email_account.tools import key_rotation, secret_box

from .common import EmailAccountCase

BOX_LOGGER = "odoo.addons.email_account.tools.secret_box"

# Run in several processes at once: in each round, each process stores a
# secret as soon as the file "go<round>" exists, which creates the key file
# if nobody has yet, and prints the token.
RACE_SCRIPT = """
import importlib.util, os, sys, time
from odoo.tools import config
spec = importlib.util.spec_from_file_location("secret_box", sys.argv[1])
box = importlib.util.module_from_spec(spec)
spec.loader.exec_module(box)
config["data_dir"] = sys.argv[2]
config[box.KEY_OPTION] = ""
for race in range(int(sys.argv[3])):
    go = os.path.join(sys.argv[2], f"go{race}")
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.0005)
    print(box.encrypt("raced"), flush=True)
"""
RACES = 10


def new_key():
    return Fernet.generate_key().decode()


@tagged("post_install", "-at_install")
class TestEmailAccountSecrets(EmailAccountCase):
    def setUp(self):
        super().setUp()
        self.data_dir = self.enterContext(tempfile.TemporaryDirectory())
        self.key_path = Path(self.data_dir, secret_box.KEY_FILE_NAME)
        self.enterContext(
            patch.dict(
                config.options,
                {"data_dir": self.data_dir, secret_box.KEY_OPTION: ""},
            )
        )
        self.enterContext(patch.dict(os.environ))
        os.environ.pop(secret_box.KEY_ENVIRON, None)

    def forget_other_secrets(self):
        # Secrets stored with the real key by other fixtures: no key here
        # decrypts them.
        accounts = self.env["email.account"].with_context(active_test=False)
        columns = accounts._secret_columns()
        accounts.search([]).sudo().write(dict.fromkeys(columns, False))

    def create_account(self, **overrides):
        return self.env["email.account"].create(self.account_values(**overrides))

    def write_key_file(self, *keys, mode=0o600):
        self.key_path.write_text("".join(f"{key}\n" for key in keys))
        self.key_path.chmod(mode)

    def stored_tokens(self, accounts):
        accounts.invalidate_recordset()
        return [
            token
            for account in accounts.sudo()
            for token in (account.password_token, account.smtp_password_token)
            if token
        ]

    # Missing key

    def test_missing_key_gives_a_user_error_that_says_where_to_restore_it(self):
        account = self.create_account()
        self.key_path.unlink()
        with self.assertRaises(UserError) as caught:
            account._get_smtp_settings()
        message = str(caught.exception)
        self.assertIn("encryption key of the e-mail accounts is missing", message)
        self.assertIn("Restore the key from your backup", message)
        self.assertIn(str(self.key_path), message)
        self.assertIn(secret_box.KEY_ENVIRON, message)
        self.assertIn(secret_box.KEY_OPTION, message)

    def test_decrypting_never_creates_a_key(self):
        account = self.create_account()
        self.key_path.unlink()
        with contextlib.suppress(UserError):
            account._get_smtp_settings()
        self.assertFalse(self.key_path.exists())

    def test_password_stays_set_without_the_key(self):
        account = self.create_account(smtp_login="relay", smtp_password="relay-Pa55")
        self.key_path.unlink()
        account.invalidate_recordset()
        self.assertTrue(account.password_set)
        self.assertTrue(account.smtp_password_set)

    def test_missing_key_with_stored_passwords_is_logged_at_start(self):
        self.forget_other_secrets()
        self.create_account()
        self.key_path.unlink()
        with self.assertLogs(BOX_LOGGER, "ERROR") as logs:
            self.env["email.account"]._register_hook()
        self.assertIn("restore it from your backup", logs.output[0])

    # Creation of the key file

    def test_storing_a_password_creates_a_private_key_file(self):
        account = self.create_account()
        self.assertEqual(stat.S_IMODE(self.key_path.stat().st_mode), 0o600)
        key = self.key_path.read_text().strip()
        token = self.stored_tokens(account)[0]
        self.assertEqual(Fernet(key).decrypt(token.encode()), b"s3cret-Pa55")

    def test_threads_racing_to_create_the_key_file_share_one_key(self):
        barrier = threading.Barrier(8)

        def store(_index):
            barrier.wait()
            return secret_box.encrypt("raced")

        with ThreadPoolExecutor(max_workers=8) as pool:
            tokens = list(pool.map(store, range(8)))
        keys = self.key_path.read_text().split()
        self.assertEqual(len(keys), 1)
        for token in tokens:
            self.assertEqual(Fernet(keys[0]).decrypt(token.encode()), b"raced")
        # The temporary files are gone: only the key file is left.
        self.assertEqual(os.listdir(self.data_dir), [secret_box.KEY_FILE_NAME])

    def test_processes_racing_to_create_the_key_file_share_one_key(self):
        # odoo is a namespace package: the folders that hold it.
        odoo_roots = os.pathsep.join(os.path.dirname(path) for path in odoo.__path__)
        environ = dict(os.environ, PYTHONPATH=odoo_roots)
        command = [
            sys.executable,
            *("-c", RACE_SCRIPT, secret_box.__file__, self.data_dir, str(RACES)),
        ]
        processes = [
            subprocess.Popen(command, stdout=subprocess.PIPE, env=environ, text=True)
            for _index in range(4)
        ]
        try:
            for race in range(RACES):
                for process in processes:
                    self.assertEqual(process.stdout.readline(), "ready\n")
                Path(self.data_dir, f"go{race}").touch()
                tokens = [process.stdout.readline().strip() for process in processes]
                keys = self.key_path.read_text().split()
                self.assertEqual(len(keys), 1)
                for token in tokens:
                    self.assertEqual(Fernet(keys[0]).decrypt(token.encode()), b"raced")
                self.key_path.unlink()
        finally:
            for process in processes:
                process.kill()
                process.wait()
                process.stdout.close()

    def test_a_reader_never_sees_a_partial_key_file(self):
        reads = []
        stop = threading.Event()

        def poll():
            while not stop.is_set():
                with (
                    contextlib.suppress(FileNotFoundError),
                    open(self.key_path, "rb") as key_file,
                ):
                    reads.append(key_file.read())

        reader = threading.Thread(target=poll)
        reader.start()
        try:
            for _round in range(30):
                with contextlib.suppress(FileNotFoundError):
                    self.key_path.unlink()
                secret_box.encrypt("polled")
                time.sleep(0.001)
        finally:
            stop.set()
            reader.join()
        self.assertTrue(reads)
        for content in reads:
            self.assertTrue(content.endswith(b"\n"), content)
            Fernet(content.strip())  # raises on a partial key

    # Permissions of the key file

    def test_key_file_open_to_others_is_refused(self):
        account = self.create_account()
        self.key_path.chmod(0o644)
        with (
            self.assertLogs(BOX_LOGGER, "ERROR") as logs,
            self.assertRaises(UserError) as caught,
        ):
            account._get_smtp_settings()
        self.assertIn("is refused", str(caught.exception))
        self.assertIn("chmod 600", str(caught.exception))
        self.assertIn("0644", logs.output[0])

    def test_key_file_open_to_others_is_not_used_to_store_a_password(self):
        self.write_key_file(new_key(), mode=0o660)
        account = self.create_account(password=False)
        with self.assertLogs(BOX_LOGGER, "ERROR"), self.assertRaises(UserError):
            account.password = "n3w-Pa55"
        self.assertFalse(self.stored_tokens(account))

    def test_key_file_of_another_user_is_refused(self):
        if os.geteuid() != 0:
            self.skipTest("only root can give a file to another user")
        self.write_key_file(new_key())
        os.chown(self.key_path, 65534, 65534)
        with (
            self.assertLogs(BOX_LOGGER, "ERROR") as logs,
            self.assertRaises(secret_box.KeyFileRefusedError),
        ):
            secret_box.encrypt("anything")
        self.assertIn("belongs to the user id 65534", logs.output[0])

    def test_refused_key_file_is_logged_at_start(self):
        self.write_key_file(new_key(), mode=0o640)
        with self.assertLogs(BOX_LOGGER, "ERROR") as logs:
            self.env["email.account"]._register_hook()
        self.assertIn("0640", logs.output[0])

    # Where the keys come from

    def test_configuration_option_comes_before_variable_and_file(self):
        option_key, variable_key, file_key = new_key(), new_key(), new_key()
        self.write_key_file(file_key)
        os.environ[secret_box.KEY_ENVIRON] = variable_key
        config.options[secret_box.KEY_OPTION] = option_key
        token = secret_box.encrypt("ordered")
        self.assertEqual(Fernet(option_key).decrypt(token.encode()), b"ordered")
        del config.options[secret_box.KEY_OPTION]
        token = secret_box.encrypt("ordered")
        self.assertEqual(Fernet(variable_key).decrypt(token.encode()), b"ordered")

    def test_key_file_lists_keys_newest_first_with_comments(self):
        old_key, new = new_key(), new_key()
        old_token = Fernet(old_key).encrypt(b"old").decode()
        self.key_path.write_text(f"# since 2026-11\n{new}\n\n# before\n{old_key}\n")
        self.key_path.chmod(0o600)
        self.assertEqual(secret_box.decrypt(old_token), "old")
        token = secret_box.encrypt("new")
        self.assertEqual(Fernet(new).decrypt(token.encode()), b"new")

    def test_invalid_key_is_refused_without_showing_it(self):
        config.options[secret_box.KEY_OPTION] = f"{new_key()}, not-a-key-at-all"
        account = self.create_account(password=False)
        with (
            self.assertLogs(BOX_LOGGER, "ERROR") as logs,
            self.assertRaises(UserError) as caught,
        ):
            account.password = "n3w-Pa55"
        self.assertIn("is not a valid key", str(caught.exception))
        self.assertIn("key number 2 of the option email_account_key", logs.output[0])
        self.assertNotIn("not-a-key-at-all", logs.output[0])

    # Rotation

    def test_old_key_still_decrypts_after_a_new_key_is_put_first(self):
        old_key, new = new_key(), new_key()
        config.options[secret_box.KEY_OPTION] = old_key
        account = self.create_account()
        config.options[secret_box.KEY_OPTION] = f"{new}, {old_key}"
        self.assertEqual(account._get_smtp_settings().password, "s3cret-Pa55")
        account.password = "n3w-Pa55"
        token = self.stored_tokens(account)[0]
        self.assertEqual(Fernet(new).decrypt(token.encode()), b"n3w-Pa55")

    def test_reencrypting_makes_every_secret_depend_on_the_newest_key_only(self):
        self.forget_other_secrets()
        old_key, new = new_key(), new_key()
        os.environ[secret_box.KEY_ENVIRON] = old_key
        accounts = (
            self.create_account(smtp_login="relay", smtp_password="relay-Pa55")
            | self.create_account(name="Archived", password="Ωμέγα-Pa55", active=False)
            | self.create_account(name="Other", company_id=self.company_b.id)
        )
        old_tokens = self.stored_tokens(accounts)
        os.environ[secret_box.KEY_ENVIRON] = f"{new},{old_key}"
        count = key_rotation.reencrypt_secrets(self.env)
        self.assertEqual(count, 4)
        os.environ[secret_box.KEY_ENVIRON] = new
        new_tokens = self.stored_tokens(accounts)
        self.assertEqual(len(new_tokens), 4)
        self.assertFalse(set(old_tokens) & set(new_tokens))
        self.assertEqual(
            [secret_box.decrypt(token) for token in new_tokens],
            ["s3cret-Pa55", "relay-Pa55", "Ωμέγα-Pa55", "s3cret-Pa55"],
        )

    def test_reencrypting_changes_nothing_if_a_secret_cannot_be_decrypted(self):
        self.forget_other_secrets()
        old_key, new = new_key(), new_key()
        os.environ[secret_box.KEY_ENVIRON] = old_key
        first = self.create_account()
        lost = self.create_account(name="Lost")
        lost.sudo().password_token = Fernet(new_key()).encrypt(b"lost").decode()
        accounts = first | lost
        before = self.stored_tokens(accounts)
        os.environ[secret_box.KEY_ENVIRON] = f"{new},{old_key}"
        with self.assertRaises(key_rotation.UndecryptableSecretError) as caught:
            key_rotation.reencrypt_secrets(self.env)
        self.assertEqual(caught.exception.account, lost)
        self.assertIn(f"(id {lost.id})", str(caught.exception))
        self.assertEqual(self.stored_tokens(accounts), before)

    def test_reencrypting_includes_the_oauth_tokens(self):
        self.forget_other_secrets()
        old_key, new = new_key(), new_key()
        os.environ[secret_box.KEY_ENVIRON] = old_key
        account = self.create_account(password=False)
        account.sudo().write(
            {
                "oauth_refresh_secret": secret_box.encrypt("refresh-token-1"),
                "oauth_access_secret": secret_box.encrypt("access-token-1"),
            }
        )
        os.environ[secret_box.KEY_ENVIRON] = f"{new},{old_key}"
        self.assertEqual(key_rotation.reencrypt_secrets(self.env), 2)
        os.environ[secret_box.KEY_ENVIRON] = new
        account.invalidate_recordset()
        stored = account.sudo()
        self.assertEqual(
            [
                secret_box.decrypt(stored.oauth_refresh_secret),
                secret_box.decrypt(stored.oauth_access_secret),
            ],
            ["refresh-token-1", "access-token-1"],
        )

    def test_odoo_finds_the_rekey_command_of_the_addon(self):
        command = find_command("email_account_rekey")
        self.assertEqual(command.name, "email_account_rekey")
