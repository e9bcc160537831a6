# Copyright 2026 email_account contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
{
    "name": "Email Accounts",
    "summary": "Sender e-mail accounts with their own SMTP settings, "
    "a delivered test message and a step-by-step diagnosis",
    "version": "19.0.1.0.0",
    "category": "Productivity/Discuss",
    "website": "https://github.com/email-account/email_account",
    "author": "email_account contributors",
    "maintainers": ["email-account"],
    "license": "LGPL-3",
    "application": True,
    "installable": True,
    "depends": ["mail", "microsoft_outlook", "google_gmail"],
    "external_dependencies": {"python": ["dnspython"]},
    "data": [
        "security/email_account_security.xml",
        "security/email_account_personal_security.xml",
        "security/ir.model.access.csv",
        "views/email_account_views.xml",
        "views/ir_mail_server_views.xml",
        "views/email_account_health_views.xml",
        "data/email_account_data.xml",
        "data/email_account_personal_data.xml",
        "views/email_account_personal_views.xml",
        "views/res_config_settings_views.xml",
        "data/email_account_health_data.xml",
    ],
    "demo": ["data/email_account_demo.xml"],
    "uninstall_hook": "uninstall_hook",
}
