"""The irregular-grid benchmark's report: the README block and the figure, drawn from a
result of the shape `benchmarks.irregular.measure` returns (its training is the public
`train_run` / `evaluate_run` path, tested in test_irregular.py)."""

import numpy as np

from benchmarks import irregular


def _result():
    rng = np.random.default_rng(0)
    results = {
        root: {
            setting: {"forecast_mse": float(rng.uniform(1, 9)), "forecast_std": 0.5,
                      "one_step_mse": float(rng.uniform(0.01, 1)), "repeat_last_mse": 44.7,
                      "seeds": []}  # fmt: skip
            for setting in irregular.SETTINGS
        }
        for root in irregular.ROOTS
    }
    spec = dict(irregular.SMOKE, seeds=None)
    result = {"device": "cpu: test", "date": "2026-01-01T00:00:00+00:00", "wall_s": 60.0,
              "command": "python -m benchmarks.irregular", "seeds": [0, 1], "spec": spec,
              "results": results}  # fmt: skip
    T, L = spec["n_steps"], spec["context"]
    examples = {root: {s: rng.normal(size=(T - L, 2)) for s in irregular.SETTINGS}
                for root in irregular.ROOTS}  # fmt: skip
    examples["t_irregular"] = np.sort(rng.uniform(0, 1, T))
    examples["truth_irregular"] = rng.normal(size=(T, 2))
    return result, examples


def test_markdown_reports_every_root_and_setting_and_their_ratios():
    result, _ = _result()
    text = irregular.markdown(result)
    rows = [line for line in text.splitlines() if line.startswith("| [tau")]
    assert len(rows) == len(irregular.ROOTS) * len(irregular.SETTINGS)
    for root in irregular.ROOTS:
        r = result["results"][root]
        plain = r["irregular_plain"]["forecast_mse"]
        aware = r["irregular_time_aware"]["forecast_mse"]
        assert f"({plain / aware:.2f}x)" in text
    assert "figures/irregular.png" in text


def test_plot_writes_a_png(tmp_path):
    result, examples = _result()
    irregular.plot(result, examples, tmp_path / "irregular.png")
    assert (tmp_path / "irregular.png").read_bytes()[:4] == b"\x89PNG"
