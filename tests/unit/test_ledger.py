"""Sample accounting: completion, stop rule, duplicates and order-independence."""

from __future__ import annotations

import random

from leukoscope.results.ledger import SampleLedger
from leukoscope.types import CellClass, CellKey, CellResult


def result(fov: int, index: int, cls: CellClass = CellClass.NEU) -> CellResult:
    return CellResult(key=CellKey("s", fov, index), cell_class=cls, probabilities=(1, 0, 0, 0, 0))


def test_complete_only_when_every_field_resolved() -> None:
    ledger = SampleLedger("s", target_cells=0)
    ledger.set_cell_count(0, 2)
    ledger.set_cell_count(1, 0)
    ledger.end(2)
    assert not ledger.complete()
    ledger.add_results([result(0, 0)])
    assert not ledger.complete()
    ledger.add_results([result(0, 1)])
    assert ledger.complete()
    assert [r.key.cell_index for r in ledger.counted()] == [0, 1]


def test_end_unknown_means_not_complete() -> None:
    ledger = SampleLedger("s", target_cells=0)
    ledger.set_cell_count(0, 0)
    assert not ledger.complete()


def test_duplicates_are_counted_once() -> None:
    ledger = SampleLedger("s", target_cells=0)
    assert ledger.set_cell_count(0, 1)
    assert not ledger.set_cell_count(0, 1)
    assert len(ledger.add_results([result(0, 0)])) == 1
    assert ledger.add_results([result(0, 0)]) == []
    ledger.end(1)
    assert len(ledger.counted()) == 1


def test_failed_field_resolves_without_cells() -> None:
    ledger = SampleLedger("s", target_cells=0)
    ledger.fail_field(0, "fov_0000.ome.tif truncated")
    ledger.set_cell_count(1, 1)
    ledger.add_results([result(1, 0)])
    ledger.end(2)
    assert ledger.complete()
    assert ledger.fields_failed == 1
    assert ledger.failure_reasons == {0: "fov_0000.ome.tif truncated"}
    assert ledger.add_results([result(0, 3)]) == []


def test_target_counts_first_cells_in_field_order() -> None:
    ledger = SampleLedger("s", target_cells=3)
    ledger.set_cell_count(1, 2)
    ledger.add_results([result(1, 0), result(1, 1)])
    assert not ledger.target_reached()  # field 0 still open: later fields cannot count yet
    ledger.set_cell_count(0, 2)
    ledger.add_results([result(0, 1), result(0, 0)])
    assert ledger.complete()
    assert [(r.key.fov, r.key.cell_index) for r in ledger.counted()] == [(0, 0), (0, 1), (1, 0)]
    assert ledger.fields_needed() == set()


def test_arrival_order_does_not_change_counts() -> None:
    counts = {0: 3, 1: 0, 2: 4, 3: 2}
    messages: list[tuple[str, int, int]] = [("seg", f, n) for f, n in counts.items()]
    messages += [("res", f, i) for f, n in counts.items() for i in range(n)]
    outcomes = set()
    rng = random.Random(7)
    for _ in range(20):
        order = messages + rng.sample(messages, 5)  # duplicates too
        rng.shuffle(order)
        ledger = SampleLedger("s", target_cells=5)
        for kind, fov, value in order:
            if kind == "seg":
                ledger.set_cell_count(fov, value)
            else:
                ledger.add_results([result(fov, value)])
        ledger.end(4)
        assert ledger.complete()
        outcomes.add(tuple((r.key.fov, r.key.cell_index) for r in ledger.counted()))
    assert outcomes == {((0, 0), (0, 1), (0, 2), (2, 0), (2, 1))}


def test_field_enters_once_even_if_announced_by_the_end() -> None:
    ledger = SampleLedger("s", target_cells=0)
    ledger.end(2)
    assert not ledger.complete()
    assert ledger.add_field(0)
    assert not ledger.add_field(0)
    assert ledger.add_field(1)
