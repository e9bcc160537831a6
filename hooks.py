def uninstall_hook(env):
    """Leave no outgoing mail server behind that only this addon can drive.

    Deleting the accounts deletes their servers (the database cascades);
    mail waiting for one of them loses its server and is then routed by its
    sender address like any other mail.
    """
    servers = (
        env["ir.mail_server"]
        .sudo()
        .with_context(active_test=False)
        .search([("email_account_id", "!=", False)])
    )
    parameters = env["ir.config_parameter"].sudo()
    default_server = parameters.get_param("mass_mailing.mail_server_id")
    if default_server in {str(server_id) for server_id in servers.ids}:
        parameters.set_param("mass_mailing.mail_server_id", False)
    env["email.account"].sudo().with_context(active_test=False).search([]).unlink()
