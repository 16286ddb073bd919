"""benchmarks/anchors.py: SINDy and per-trajectory ODE-fit anchors against WARP.

Fast tests check the pieces against independent references (PySINDy's own feature
order, a known linear system, hand-made rows); the end-to-end smoke runs of the
benchmark compile an ODE fit and train two WARP models, which takes minutes on a
shared CPU, so the full one is marked slow.
"""

import json

import numpy as np
import pytest

from benchmarks import _anchors_report as report
from benchmarks import _fits


def test_bounded_clips_and_flags_failures():
    forecast = np.array([[[1.0, 2.0]], [[np.nan, 0.0]], [[50.0, -np.inf]]])
    clipped, failed = _fits.bounded(forecast, np.array([10.0, 20.0]))
    assert failed.tolist() == [False, True, True]
    np.testing.assert_array_equal(clipped[0], [[1.0, 2.0]])
    assert np.all(np.abs(clipped) <= [10.0, 20.0]) and np.all(np.isfinite(clipped))
    np.testing.assert_array_equal(clipped[2], [[10.0, -20.0]])


def test_polynomial_powers_follow_pysindy():
    ps = pytest.importorskip("pysindy")
    x = np.random.default_rng(0).normal(size=(20, 3))
    for n_vars in (1, 2, 3):
        library = ps.PolynomialLibrary(degree=3).fit(x[:, :n_vars])
        np.testing.assert_array_equal(_fits.polynomial_powers(n_vars, 3), library.powers_)


def test_sindy_forecast_recovers_a_linear_oscillator():
    pytest.importorskip("pysindy")
    t = np.linspace(0.0, 1.0, 256)
    omega, decay = 12.0, 0.5  # x' = v, v' = -omega^2 x - 2 decay v, solved in closed form
    w = np.sqrt(omega**2 - decay**2)
    x = np.exp(-decay * t) * np.cos(w * t)
    v = np.exp(-decay * t) * (-decay * np.cos(w * t) - w * np.sin(w * t))
    y = np.stack([x, v], -1)[None].astype(np.float32)
    forecast, fit_s, sim_s = _fits.sindy_forecast(y[:, :100], t, 156, 0.1, "finite_difference")
    assert forecast.shape == (1, 156, 2) and fit_s > 0 and sim_s > 0
    assert np.mean((forecast - y[:, 100:]) ** 2) < 1e-2 * np.mean(y[:, 100:] ** 2)


def _rows():
    rows = []
    seconds = {"oracle_fit": 1.0, "warp_phys_refine5": 0.05, "warp_phys_refine20": 0.2}
    seconds = {m: seconds.get(m, 1e-3) for m in report.METHODS}
    mse = {"sindy": 5.0, "oracle_fit": 1e-4, "warp_phys": 2e-4, "warp": 1.0}
    mse |= {"warp_phys_refine5": 2.5e-4, "warp_phys_refine20": 1e-4}
    for system in ("msd", "lotka_volterra"):
        for noise in (0.0, 0.05):
            for context in (25, 100):
                for method, value in mse.items():
                    noisy = noise > 0 and context == 25 and method == "oracle_fit"
                    rows.append(
                        dict(
                            system=system,
                            method=method,
                            noise=noise,
                            context=context,
                            mse=10.0 if noisy else value,
                            median_mse=value,
                            failed=0,
                            seconds_per_trajectory=seconds[method],
                            **(
                                {"train_seconds": 9.0, "train_steps": 3}
                                if method.startswith("warp")
                                else {}
                            ),
                        )
                    )
    return rows


def test_targets_and_markdown():
    rows = _rows()
    found = {t["target"].split(" MSE")[0].split(" below")[0]: t for t in report.targets(rows)}
    first = found["MSD, noise 0, context 100: WARP-Phys"]
    assert first["met"] and first["mse_ratio"] == pytest.approx(2.0)
    assert first["speedup"] == pytest.approx(1000.0)
    refined = found["MSD, noise 0, context 100: WARP-Phys + refine 5"]
    assert refined["met"] and refined["speedup"] == pytest.approx(20.0)  # >= 10x asked
    assert not found["MSD, noise 0, context 100: WARP-Phys + refine 20"]["met"]  # 5x only
    assert found["LV, noise 5 %, context 25: WARP-Phys"]["met"]  # 2e-4 < min(5, 10)
    assert found["LV, noise 5 %, context 25: WARP-Phys + refine 20"]["met"]
    result = {
        "rows": rows,
        "targets": report.targets(rows),
        "n_test": 4,
        "preset": "test",
        "device": "cpu",
        "date": "today",
        "notes": ["a note"],
    }
    text = report.markdown(result)
    assert "| MSD | 0% | oracle fit 0.0001 (0.0001) |" in text  # refine 20 is second
    assert "- met: MSD, noise 0, context 100" in text and "a note" in text
    assert "| MSD | WARP-Phys + refine 20 | 0.0001 / 0.2 |" in text


def _smoke(tmp_path, methods):
    from benchmarks import anchors

    out = tmp_path / "anchors.json"
    result = anchors.main(
        [
            "--smoke",
            "--out",
            str(out),
            "--no-readme",
            "--methods",
            *methods,
        ]
    )
    assert json.loads(out.read_text())["rows"] == result["rows"]
    for row in result["rows"]:
        assert set(row) >= {"system", "method", "noise", "context", "mse", "seconds_per_trajectory"}
        assert np.isfinite(row["mse"]) and row["seconds_per_trajectory"] > 0
    return result


def test_smoke_sindy_and_warp_phys(tmp_path):
    """The smoke mode end to end with SINDy, WARP-Phys and WARP-Phys + refine 5 (one
    training for both; SINDy only if installed)."""
    from importlib.util import find_spec

    result = _smoke(tmp_path, ["sindy", "warp_phys", "warp_phys_refine5"])
    methods = {r["method"] for r in result["rows"]}
    phys = {"warp_phys", "warp_phys_refine5"}
    assert methods == (phys | {"sindy"} if find_spec("pysindy") is not None else phys)
    trainings = {r["train_seconds"] for r in result["rows"] if r["method"] in phys}
    assert len(trainings) == 1  # the refined rows reuse the trained WARP-Phys
    assert not result["errors"]
    assert len(result["rows"]) == 2 * len(methods)  # smoke: 2 noise levels, 1 context


@pytest.mark.slow
def test_smoke_every_method(tmp_path):
    result = _smoke(tmp_path, list(report.METHODS))
    assert not result["errors"]
    assert {r["method"] for r in result["rows"]} >= {"oracle_fit", "warp_phys", "warp"}


def test_a_subset_run_replaces_only_its_own_rows():
    """`--methods` / `--systems`: the blocks run replace their rows (and seconds, errors)
    in the complete result; the others' are kept, and the targets are recomputed."""
    from benchmarks.anchors import merged

    def row(method, mse, seconds=1.0):
        return dict(system="msd", method=method, noise=0.0, context=100, mse=mse,
                    seconds_per_trajectory=seconds)  # fmt: skip

    old = dict(rows=[row("oracle_fit", 1e-11), row("warp_phys", 9.0)], date="then",
               block_seconds={"msd/oracle_fit": 5.0, "msd/warp_phys": 7.0},
               errors=["msd/warp_phys: ValueError: old"], complete=False,
               settings=dict(systems=["lv", "msd"], seed=0))  # fmt: skip
    new = dict(rows=[row("warp_phys", 2e-11, 1e-3)], errors=[], date="now",
               block_seconds={"msd/warp_phys": 3.0},
               settings=dict(systems=["msd"], seed=1))  # fmt: skip
    result = merged(new, old)
    assert [(r["method"], r["mse"]) for r in result["rows"]] == [
        ("oracle_fit", 1e-11), ("warp_phys", 2e-11)
    ]
    assert result["block_seconds"] == {"msd/oracle_fit": 5.0, "msd/warp_phys": 3.0}
    assert result["errors"] == [] and result["complete"] and result["merged_into"] == "then"
    assert result["settings"] == dict(systems=["lv", "msd"], seed=1)  # the rows' systems
    assert [t["met"] for t in result["targets"]] == [True]  # <= 3x the oracle, 1000x faster
