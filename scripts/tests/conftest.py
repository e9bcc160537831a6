"""One collection rule for the tests of the project's scripts.

The repository root is the Odoo addon and its ``__init__.py`` imports Odoo;
pytest would import it as the package these tests are collected through.
They test the scripts from outside, so directories are plain folders here.
"""

import pytest


class _PlainDirectories:
    @pytest.hookimpl(tryfirst=True)
    def pytest_collect_directory(self, path, parent):
        if (path / "__init__.py").is_file():
            return pytest.Dir.from_parent(parent, path=path)
        return None


def pytest_configure(config):
    config.pluginmanager.register(_PlainDirectories(), "scripts-plain-dirs")
