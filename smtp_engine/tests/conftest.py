"""Fixtures of the SMTP engine's tests, and their collection rule.

The tests import ``smtp_engine`` as a top-level package, never through the
addon (whose ``__init__.py`` imports Odoo): see plain_folders.py.
"""

import os
import tempfile
import threading
import time

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

from smtp_engine import SmtpSettings
from smtp_engine.tests.plain_folders import collect_plain_folders
from smtp_engine.tests.servers import make_test_certificates


def pytest_configure(config):
    collect_plain_folders(config)


@pytest.fixture(autouse=True)
def no_thread_left_behind():
    """Fail a test that leaves a server, watchdog or look-up thread running."""
    before = set(threading.enumerate())
    yield
    give_up = time.monotonic() + 2
    while (left := set(threading.enumerate()) - before) and time.monotonic() < give_up:
        time.sleep(0.02)
    assert not left, f"threads left running: {sorted(t.name for t in left)}"


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return make_test_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def settings_for(certs):
    """Return a factory of settings pointing at a test server."""

    def make(server, **values):
        values.setdefault("host", server.host)
        values.setdefault("port", server.port)
        values.setdefault("encryption", getattr(server, "tls", "none"))
        values.setdefault("timeout", 5.0)
        values.setdefault("sender_name", "Test Sender")
        values.setdefault("sender_email", "sender@example.com")
        values.setdefault("cafile", str(certs.ca_cert))
        # The test servers are on loopback; the refusal has tests of its own.
        values.setdefault("cleartext_login", True)
        return SmtpSettings(**values)

    return make


# Hypothesis keeps caches in a folder of its own: not in the checkout.
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "smtp_engine_hypothesis"))
# Hypothesis: the same cases on every run (CI must not fail by chance), no
# time limit per case (the engine's own deadline is what is tested), and no
# example database written into the checkout. "thorough" explores anew.
settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough", parent=settings.get_profile("ci"), derandomize=False, max_examples=500
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
