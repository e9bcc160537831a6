from . import email_account
from . import ir_mail_server
from . import mail_mail
from . import email_account_check
