"""How a component's documents are cut into batches and a batch into steps (issue 8: wall time near the
floor): staggered first batches, steps read ahead and written back behind, in order."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.adapters import document_steps
from connector.sync.engine import _Behind, _read_ahead, staggered_batches


@given(n=st.integers(0, 400), size=st.integers(1, 100), at_once=st.integers(1, 6))
def test_staggered_batches_keep_every_id_once_in_order_none_empty_none_too_big(n, size, at_once):
    ids = [f"d{i}" for i in range(n)]
    batches = staggered_batches(ids, size, at_once)
    assert [i for b in batches for i in b] == ids
    assert all(0 < len(b) <= size for b in batches)


def test_the_first_batches_side_by_side_are_staggered_then_full():
    sizes = [len(b) for b in staggered_batches([str(i) for i in range(200)], 25, 4)]
    assert sizes[:4] == [7, 13, 19, 25]  # they end one after the other, not all at once
    assert set(sizes[4:-1]) == {25}
    assert [len(b) for b in staggered_batches([str(i) for i in range(200)], 50, 1)] == [50] * 4  # one at a time: no stagger
    assert [len(b) for b in staggered_batches([str(i) for i in range(20)], 25, 4)] == [20]  # one batch: as is


def test_steps_per_tool():
    ids = [str(i) for i in range(100)]
    # short first and last steps, growing by STEP_GROWTH up to the long size between
    assert [len(s) for s in document_steps("exact", ids[:25])] == [3, 9, 10, 3]
    assert [len(s) for s in document_steps("exact", ids[:60])] == [3, 9, 20, 20, 5, 3]
    assert [len(s) for s in document_steps("exact", ids[:7])] == [3, 4]  # no step of 1 between two of 3
    assert [len(s) for s in document_steps("exact", ids[:6])] == [3, 3]
    assert [len(s) for s in document_steps("exact", ids[:1])] == [1]
    assert [len(s) for s in document_steps("octopus", ids[:50])] == [10] * 5
    assert [len(s) for s in document_steps("yuki", ids)] == [100]  # one import call a batch: the step is the batch
    assert document_steps("exact", []) == []
    assert [i for s in document_steps("exact", ids) for i in s] == ids


@given(n=st.integers(0, 300), tool=st.sampled_from(["exact", "octopus", "yuki"]))
def test_steps_keep_every_id_once_in_order_and_none_is_empty(n, tool):
    ids = [f"d{i}" for i in range(n)]
    steps = document_steps(tool, ids)
    assert [i for s in steps for i in s] == ids
    assert all(len(s) > 0 for s in steps)


def test_read_ahead_yields_in_order_and_reads_the_next_step_on_another_thread():
    threads: list[str] = []

    def read(chunk):
        threads.append(threading.current_thread().name)
        return [x * 2 for x in chunk]

    assert list(_read_ahead(read, [[1, 2], [3], [4, 5]])) == [[2, 4], [6], [8, 10]]
    assert all(name.startswith("read-ahead") for name in threads)
    assert list(_read_ahead(read, [[7]])) == [[14]]  # a single step is read on the caller's thread
    assert threads[-1] == threading.current_thread().name


def test_a_failed_read_is_raised_where_its_step_would_come():
    def read(chunk):
        if chunk == ["bad"]:
            raise ValueError("host down")
        return chunk

    got = []
    with pytest.raises(ValueError, match="host down"):
        for step in _read_ahead(read, [["a"], ["bad"], ["c"]]):
            got.append(step)
    assert got == [["a"]]


def test_write_behind_keeps_the_order_and_raises_a_failed_job():
    with _Behind(True) as behind:
        for n in range(5):
            behind.submit(lambda n=n: [{"id": n}])
        assert [r["id"] for r in behind.results()] == [0, 1, 2, 3, 4]

    def boom():
        raise RuntimeError("write-back refused")

    with _Behind(True) as behind:
        behind.submit(boom)
        with pytest.raises(RuntimeError, match="refused"):
            behind.results()
    with _Behind(False) as inline:  # not threaded: jobs run at once
        inline.submit(lambda: [{"id": "x"}])
        assert inline.results() == [{"id": "x"}]
