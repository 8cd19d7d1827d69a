"""The one overlap test the simulator's platelets, debris, smudge cells and white cells share."""

from leukoscope.instrument.simulator.placement import clear_of


def test_a_disc_is_clear_only_beyond_the_sum_of_radii_and_gap() -> None:
    discs = [(0.0, 0.0, 5.0)]
    assert clear_of(0.0, 10.1, 5.0, discs)
    assert not clear_of(0.0, 10.0, 5.0, discs)  # touching is not clear
    assert not clear_of(0.0, 10.1, 5.0, discs, gap=1.0)
    assert clear_of(0.0, 11.1, 5.0, discs, gap=1.0)


def test_every_disc_counts_and_an_empty_field_is_clear() -> None:
    discs = [(0.0, 0.0, 1.0), (50.0, 50.0, 10.0)]
    assert not clear_of(45.0, 45.0, 1.0, discs)
    assert clear_of(25.0, 25.0, 1.0, discs)
    assert clear_of(0.0, 0.0, 100.0, [])
