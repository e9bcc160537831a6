from . import email_account
from . import ir_mail_server
from . import mail_mail
from . import res_config_settings
from . import res_users
from . import email_account_check
