from . import test_email_account
from . import test_email_account_security
from . import test_email_account_check
from . import test_email_account_rpc
from . import test_email_account_i18n
from . import test_email_account_routing
from . import test_email_account_mass_mailing
from . import test_email_account_secrets
