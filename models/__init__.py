from . import email_account
