"""Install and uninstall hooks."""


def uninstall_hook(env):
    """Leave no outgoing mail server behind that only this addon can drive.

    The servers that back the accounts are removed with the accounts; mail
    still queued for them falls back to Odoo's default routing instead of
    failing on a server that no longer exists.
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
    servers.unlink()
