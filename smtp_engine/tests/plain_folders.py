"""The collection rule of the test suites that run without Odoo.

The repository root is the Odoo addon and its ``__init__.py`` imports Odoo.
pytest imports the ``__init__.py`` of every package directory it collects
through, so it would import Odoo. The engine's tests import ``smtp_engine``
as a top-level package, and the scripts' tests test the scripts from
outside: both collect directories as plain folders.
"""

import pytest

PLUGIN = "email-account-plain-folders"


class _PlainDirectories:
    @pytest.hookimpl(tryfirst=True)
    def pytest_collect_directory(self, path, parent):
        if (path / "__init__.py").is_file():
            return pytest.Dir.from_parent(parent, path=path)
        return None


def collect_plain_folders(config):
    """Apply the rule; the conftest of each suite calls it at configure."""
    if not config.pluginmanager.has_plugin(PLUGIN):
        config.pluginmanager.register(_PlainDirectories(), PLUGIN)
