"""Install and uninstall hooks."""

from .models.ir_mail_server import SYNC_CONTEXT_KEY


def uninstall_hook(env):
    """Leave no outgoing mail server behind that only this addon can drive.

    The servers that back the accounts store no password and are useless
    without the addon, so they go. Mail waiting for them (queued, or failed
    and possibly retried by hand) is released first: it is then routed like
    any other mail by its sender address instead of pointing at a server
    that no longer exists. Mailings and templates lose the server the same
    way, through the foreign keys.
    """
    servers = (
        env["ir.mail_server"]
        .sudo()
        .with_context(active_test=False)
        .search([("email_account_id", "!=", False)])
    )
    if not servers:
        return
    env["mail.mail"].sudo().search(
        [
            ("mail_server_id", "in", servers.ids),
            ("state", "in", ("outgoing", "exception")),
        ]
    ).write({"mail_server_id": False})
    default_server = (
        env["ir.config_parameter"].sudo().get_param("mass_mailing.mail_server_id")
    )
    if (
        default_server
        and default_server.isdigit()
        and int(default_server) in servers.ids
    ):
        env["ir.config_parameter"].sudo().set_param(
            "mass_mailing.mail_server_id", False
        )
    servers.with_context(**{SYNC_CONTEXT_KEY: True}).unlink()
