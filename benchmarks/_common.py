"""What the benchmark scripts share: the order of their cases, medians, threads.

Importing this module puts the repository root on ``sys.path``: the root is
the Odoo addon, whose ``__init__.py`` imports Odoo, so the scripts import the
engine as the top-level package ``smtp_engine`` instead.
"""

import contextlib
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def running_threads():
    """The threads running now, to compare with after the run."""
    return set(threading.enumerate())


def fail_on_threads_left(before, wait=2.0):
    """Exit with an error if threads started during the run still run."""
    give_up = time.monotonic() + wait
    while (left := running_threads() - before) and time.monotonic() < give_up:
        time.sleep(0.02)
    if left:
        raise SystemExit(f"threads left running: {sorted(t.name for t in left)}")


@contextlib.contextmanager
def whole_run():
    """Print how long the run took, and fail it if it left threads running."""
    threads_before = running_threads()
    started = time.perf_counter()
    yield
    fail_on_threads_left(threads_before)
    print(f"\nwhole run: {time.perf_counter() - started:.0f} s")


def print_header(header):
    """Print a Markdown table's header row and the rule under it."""
    print(header)
    print("|" + "|".join("-" * len(part) for part in header.split("|")[1:-1]) + "|")


def spread(values, digits=2):
    """The smallest and largest of ``values``, as ``min-max``."""
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def turned(cases, round_):
    """``cases`` in the order of round ``round_``: turned by one each round,
    so that a drift of the machine falls on all cases alike."""
    shift = round_ % len(cases)
    return cases[shift:] + cases[:shift]


def median(samples, key):
    return statistics.median(sample[key] for sample in samples)
