"""One collection rule for the tests of the project's scripts.

They test the scripts from outside, so directories are plain folders here,
as for the engine's tests (see smtp_engine/tests/plain_folders.py).
"""

from smtp_engine.tests.plain_folders import collect_plain_folders


def pytest_configure(config):
    collect_plain_folders(config)
