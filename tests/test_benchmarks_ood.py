"""The OOD breakdown's grouping (benchmarks/ood_breakdown.py), on hand-made numbers."""

import math

import pytest

from benchmarks.ood_breakdown import breakdown, omega0_range


def test_omega0_range_is_the_box_corners():
    low, high = omega0_range({"m": (0.02, 0.04), "k": (4.0, 16.0), "c": (0.01, 0.2)})
    assert low == pytest.approx(10.0) and high == pytest.approx(math.sqrt(800.0))


def test_breakdown_groups_and_shares():
    mse, omega0 = [1.0, 2.0, 3.0, 14.0], [5.0, 10.0, 20.0, 40.0]
    out = breakdown(mse, omega0, 10.0, 28.0)
    assert (out["n"], out["mean"], out["median"]) == (4, 5.0, 2.5)
    assert out["below"] == dict(n=1, mean=1.0, share=0.05)
    assert out["inside"] == dict(n=2, mean=2.5, share=0.25)  # the bounds count as inside
    assert out["above"] == dict(n=1, mean=14.0, share=0.7)


def test_breakdown_empty_group_and_bad_shapes():
    out = breakdown([1.0, 3.0], [12.0, 13.0], 10.0, 28.0)
    assert out["above"] == dict(n=0, mean=None, share=0.0)
    with pytest.raises(ValueError, match=r"\(N,\)"):
        breakdown([1.0, 2.0], [12.0], 10.0, 28.0)
