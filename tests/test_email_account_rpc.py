"""Access over real RPC: what the web client and external clients get back."""

from odoo.tests import HttpCase, tagged
from odoo.tests.common import JsonRpcException
from odoo.tools import mute_logger

from .common import JsonRpcMixin, new_user

PASSWORD = "s3cret-Pa55"


@tagged("post_install", "-at_install")
class TestEmailAccountRpc(JsonRpcMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = new_user(
            cls.env, "rpc_manager", "email_account.group_email_account_manager"
        )
        cls.user = new_user(
            cls.env, "rpc_user", "email_account.group_email_account_user"
        )
        cls.account = cls.env["email.account"].create(
            {
                "name": "Sales",
                "username": "sales@example.com",
                "password": PASSWORD,
                "sender_email": "sales@example.com",
                "smtp_host": "127.0.0.1",
            }
        )

    def test_web_client_save_and_read_never_return_a_password(self):
        self.log_in(self.manager)
        spec = {"password": {}, "smtp_password": {}, "password_set": {}, "name": {}}
        saved = self.call(
            "email.account",
            "web_save",
            [self.account.id],
            {"password": "n3w-Pa55", "smtp_password": "x-Pa55"},
            specification=spec,
        )
        read = self.call(
            "email.account", "web_read", [self.account.id], specification=spec
        )
        for answer in (saved, read):
            self.assertEqual(answer[0]["password"], False)
            self.assertEqual(answer[0]["smtp_password"], False)
            self.assertTrue(answer[0]["password_set"])
        # The new password was stored all the same, encrypted.
        self.assertEqual(self.account._get_smtp_settings().password, "n3w-Pa55")

    @mute_logger("odoo.http")
    def test_web_client_user_cannot_read_secrets_or_edit(self):
        self.log_in(self.user)
        read = self.call(
            "email.account",
            "web_read",
            [self.account.id],
            specification={"name": {}, "sender_email": {}},
        )
        self.assertEqual(read[0]["name"], "Sales")
        read = self.call(
            "email.account",
            "web_read",
            [self.account.id],
            specification={"password": {}, "smtp_password": {}},
        )
        self.assertEqual(read[0]["password"], False)
        self.assertEqual(read[0]["smtp_password"], False)
        for method, *args in (
            ("read", [self.account.id], ["password_token"]),
            ("write", [self.account.id], {"name": "Mine"}),
            ("action_send_test_message", [self.account.id]),
        ):
            with self.subTest(method=method), self.assertRaises(JsonRpcException):
                self.call("email.account", method, *args)
        self.assertEqual(self.account.name, "Sales")

    @mute_logger("odoo.http")
    def test_form_view_sent_to_a_user_has_no_secret_fields(self):
        self.log_in(self.user)
        views = self.call("email.account", "get_views", views=[[False, "form"]])
        arch = views["views"]["form"]["arch"]
        self.assertIn('name="sender_email"', arch)
        self.assertNotIn('name="test_transcript"', arch)
        self.assertNotIn(PASSWORD, arch)

    @mute_logger("odoo.http")
    def test_external_json2_client_gets_no_password(self):
        if "res.users.apikeys" not in self.env or not self.env[
            "ir.module.module"
        ].search_count([("name", "=", "rpc"), ("state", "=", "installed")]):
            self.skipTest("Odoo's external API (rpc) is not installed")
        key = (
            self.env["res.users.apikeys"]
            .with_user(self.manager)
            .sudo()
            ._generate(None, "email_account test", None)
        )
        headers = {"Authorization": f"bearer {key}"}

        def call(method, **params):
            return self.url_open(
                f"/json/2/email.account/{method}", json=params, headers=headers
            )

        response = call(
            "read", ids=[self.account.id], fields=["password", "smtp_password", "name"]
        )
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.json()[0]["password"], False)
        self.assertEqual(response.json()[0]["smtp_password"], False)
        self.assertNotIn(PASSWORD, response.text)
        response = call("read", ids=[self.account.id], fields=["password_token"])
        self.assertEqual(response.status_code, 403, response.text)
