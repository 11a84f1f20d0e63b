from __future__ import annotations

import gc
import threading

import pytest

from app.core.gc_pause import gc_paused


def test_collector_is_paused_until_the_last_holder_leaves() -> None:
    assert gc.isenabled()
    inside = threading.Event()
    release = threading.Event()

    def other_holder() -> None:
        with gc_paused():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=other_holder)
    thread.start()
    inside.wait(5)
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other thread still holds it
    release.set()
    thread.join(5)
    assert gc.isenabled()


def test_collector_comes_back_after_an_error() -> None:
    @gc_paused()
    def failing() -> None:
        assert not gc.isenabled()
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        failing()
    assert gc.isenabled()
