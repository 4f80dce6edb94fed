"""Ctrl-C never lands inside a write to the store (smo_impact.runner.interrupts)."""

import contextlib
import os
import signal

import pytest

from smo_impact.runner.interrupts import Uninterrupted, stop_on_signals


class _Store:
    """A tracker whose writes take a Ctrl-C half way through, and record whether they finished."""

    def __init__(self):
        self.finished = []

    def end_run(self, run_id):
        os.kill(os.getpid(), signal.SIGINT)  # arrives mid-write
        self.finished.append(("end_run", run_id))

    @contextlib.contextmanager
    def batch(self, run_id):
        yield self
        # The buffered writes are sent on exit: Ctrl-C arrives while they are sent.
        os.kill(os.getpid(), signal.SIGINT)
        self.finished.append(("batch", run_id))


def test_ctrl_c_during_a_call_is_raised_after_it():
    store = _Store()
    with stop_on_signals(), pytest.raises(KeyboardInterrupt):
        Uninterrupted(store).end_run("r1")
    assert store.finished == [("end_run", "r1")]


def test_ctrl_c_while_a_batch_is_sent_is_raised_after_it_is_sent():
    # A batch is a context manager: its writes happen in __exit__, after the wrapped call returned.
    # Before the fix, Ctrl-C there interrupted the SQLite write (its connection kept the lock, and
    # marking the runs KILLED failed with "database is locked"); this test failed: nothing finished.
    store = _Store()
    with stop_on_signals(), pytest.raises(KeyboardInterrupt):
        with Uninterrupted(store).batch("r1"):
            pass
    assert store.finished == [("batch", "r1")]
