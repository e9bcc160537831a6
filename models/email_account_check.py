"""A user's request to check accounts in the background, reported on the bus."""

import time

from odoo import Command, fields, models

# Progress notifications at most this often per request, in seconds.
PROGRESS_INTERVAL = 3.0
# When each running request last sent its progress (time.monotonic()).
_last_progress = {}


class EmailAccountCheck(models.Model):
    _name = "email.account.check"
    _description = "Check of Email Accounts in the Background"
    _order = "id desc"

    user_id = fields.Many2one(
        "res.users",
        string="Requested By",
        required=True,
        index=True,
        ondelete="cascade",
    )
    account_ids = fields.Many2many(
        "email.account", relation="email_account_check_account_rel", string="Accounts"
    )
    pending_account_ids = fields.Many2many(
        "email.account",
        relation="email_account_check_pending_rel",
        string="Accounts Not Yet Checked",
    )
    state = fields.Selection(
        selection=[("running", "Running"), ("done", "Done")],
        required=True,
        default="running",
        index=True,
    )

    def _account_checked(self, account):
        """Count the result just stored for ``account`` in every request."""
        requests = self.search(
            [("state", "=", "running"), ("pending_account_ids", "in", account.ids)]
        )
        for request in requests:
            request.pending_account_ids = [Command.unlink(account.id)]
            if request.pending_account_ids:
                request._send_progress()
            else:
                request._send_summary()

    def _send_progress(self):
        self.ensure_one()
        now = time.monotonic()
        key = (self.env.cr.dbname, self.id)
        if now - _last_progress.get(key, -PROGRESS_INTERVAL) < PROGRESS_INTERVAL:
            return
        _last_progress[key] = now
        env = self.with_context(lang=self.user_id.lang or "en_US").env
        total = len(self.account_ids)
        self.user_id._bus_send(
            "simple_notification",
            {
                "type": "info",
                "title": env._("Checking email accounts"),
                "message": env._(
                    "%(done)s of %(total)s checked",
                    done=total - len(self.pending_account_ids),
                    total=total,
                ),
                "sticky": False,
            },
        )

    def _send_summary(self):
        self.ensure_one()
        self.state = "done"
        _last_progress.pop((self.env.cr.dbname, self.id), None)
        user = self.user_id
        lang = user.lang or "en_US"
        accounts = self.account_ids.with_user(user).with_context(lang=lang)
        params = accounts.sudo()._check_notification()["params"]
        user._bus_send(
            "simple_notification",
            {key: params[key] for key in ("type", "title", "message", "sticky")},
        )
