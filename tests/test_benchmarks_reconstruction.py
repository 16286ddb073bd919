"""The reconstruction benchmark in its seconds-long smoke mode: configs of both presets
build, the harness trains and evaluates end to end, writes the issue's JSON keys, and
skips finished runs when rerun."""

import json

import pytest

from benchmarks import _presets, reconstruction


def test_presets_build_every_cell():
    for preset in _presets.PRESETS:
        for system in _presets.SYSTEMS:
            for model in _presets.models_for(system):
                config = reconstruction.run_config(preset, system, model, 0)
                assert config.convention == "clean"
                assert config.data_seed == 0
    assert "warp_phys" not in _presets.models_for("lotka_volterra")
    paper = reconstruction.run_config("paper", "msd", "warp", 0)
    assert (paper.root_width, paper.root_depth, paper.batch_size) == (48, 3, 1024)
    assert reconstruction.run_config("cpu", "sine", "warp_phys", 0).decoder == "sinusoid"
    with pytest.raises(ValueError, match="not in the"):
        reconstruction.run_config("cpu", "lotka_volterra", "warp_phys", 0)


@pytest.mark.slow  # three short trainings, but compiling them takes minutes on 2 loaded cores
def test_smoke_end_to_end(tmp_path):
    out, runs = tmp_path / "reconstruction.json", tmp_path / "runs"
    common = ["--smoke", "--out", str(out), "--runs", str(runs)]
    reconstruction.main(common + ["--systems", "sine", "--models", "warp_phys", "gru"])
    # a second call adds to the same per-run file: MSD (with an OOD split), one model
    summary = reconstruction.main(common + ["--systems", "msd", "--models", "gru"])
    stored = json.loads(out.read_text())
    assert stored == json.loads(json.dumps(summary))
    assert stored["preset"] == "cpu" and isinstance(stored["device"], str) and stored["date"]
    assert stored["wall_seconds"] > sum(
        cell["train_seconds"] for row in stored["results"].values() for cell in row.values()
    )
    assert {s: set(row) for s, row in stored["results"].items()} == {
        "sine": {"warp_phys", "gru"},
        "msd": {"gru"},
    }
    for system, row in stored["results"].items():
        for model, cell in row.items():
            for key in ("mean", "std", "paper", "params", "train_seconds"):
                assert key in cell
            assert cell["mean"] > 0 and cell["params"] > 0 and cell["train_seconds"] > 0
            assert cell["paper"] == _presets.PAPER[system][model]
    assert stored["results"]["msd"]["gru"]["ood_mean"] > 0
    assert stored["results"]["sine"]["gru"]["ood_mean"] is None
    assert not stored["complete"]  # the other cells were not asked for
    # a rerun finds every asked-for run in the per-run file and trains nothing
    records = json.loads((tmp_path / "reconstruction_runs.json").read_text())
    assert set(records) == {"sine/warp_phys/0", "sine/gru/0", "msd/gru/0"}
    runs.rename(tmp_path / "gone")
    again = reconstruction.main(common + ["--systems", "msd", "--models", "gru"])
    assert again["results"] == summary["results"]
    assert not runs.exists()
    # --rescore evaluates the kept run folder again, trains nothing, and changes nothing
    (tmp_path / "gone").rename(runs)
    records["msd/gru/0"]["test"] = -1.0  # a stale score, overwritten by the rescore
    (tmp_path / "reconstruction_runs.json").write_text(json.dumps(records))
    rescored = reconstruction.main(common + ["--systems", "msd", "--models", "gru", "--rescore"])
    assert rescored["results"]["msd"] == summary["results"]["msd"]


def test_targets_and_markdown():
    cell = dict(
        std=0.0,
        paper=None,
        ood_mean=None,
        ood_std=None,
        params=1,
        train_seconds=1.0,
        steps=200.0,
        stopped_on_time=0,
    )
    results = {
        "msd": {
            "gru": dict(cell, mean=1.0),
            "lstm": dict(cell, mean=2.0),
            "transformer": dict(cell, mean=0.5),
            "warp": dict(cell, mean=0.8),
            "warp_phys": dict(cell, mean=0.04),
        },
    }
    checks = {t["target"]: t for t in reconstruction.targets(results)}
    assert checks["msd: WARP-Phys >= 10x below the best baseline"]["met"]
    assert checks["msd: WARP below GRU and LSTM"]["met"]
    summary = dict(
        preset="cpu",
        device="cpu",
        date="today",
        complete=False,
        missing=["msd_zero/gru/0"],
        results=results,
        wall_seconds=1500.0,
        targets=reconstruction.targets(results),
    )
    text = reconstruction.markdown(summary, "make bench-table")
    assert "Partial results" in text and "0.04 ± 0.00" in text and "not run" in text
    assert "25 min of wall clock" in text
    assert "wall clock" not in reconstruction.markdown(dict(summary, wall_seconds=None), "x")


def test_a_diverged_forecast_makes_the_mean_null():
    """A seed whose OOD forecast diverged (NaN): the JSON mean is null (no NaN in the
    file), the per-seed list says which seed, and the README's OOD cell says n/a."""
    base = dict(params=10, train_seconds=1.0, steps=5, stopped="steps", wall_seconds=2.0)
    records = {
        f"msd/{m}/{s}": dict(base, test=1.0 + s, ood=2.0 + s)
        for m in _presets.models_for("msd")
        for s in (0, 1)
    }
    records["msd/warp_phys/1"] = dict(base, test=0.5, ood=float("nan"))
    summary = reconstruction.summarise(records, "cpu", (0, 1))
    cell = json.loads(json.dumps(summary, allow_nan=False))["results"]["msd"]["warp_phys"]
    assert cell["ood_mean"] is None and cell["per_seed_ood"] == [2.0, None]
    assert cell["mean"] == pytest.approx(0.75)
    assert summary["wall_seconds"] == pytest.approx(2.0 * len(records))
    ood = reconstruction.markdown(summary, "make bench-table").split("Out-of-distribution")[1]
    assert "| MSD | 2.50 ± 0.50 | 2.50 ± 0.50 | 2.50 ± 0.50 | 2.50 ± 0.50 | n/a | ✗ |" in ood


def test_targets_with_a_diverged_cell():
    """A diverged (null) mean is worse than any number: the model with it misses its
    target, its rival meets theirs with no finite ratio, and the JSON stays finite."""
    cell = dict(
        std=0.0,
        paper=None,
        ood_mean=None,
        ood_std=None,
        params=1,
        train_seconds=1.0,
        steps=5.0,
        stopped_on_time=0,
    )
    results = {
        "msd": {
            "gru": dict(cell, mean=None),
            "lstm": dict(cell, mean=2.0),
            "transformer": dict(cell, mean=0.5),
            "warp": dict(cell, mean=None),
            "warp_phys": dict(cell, mean=0.04),
        },
        "lotka_volterra": {
            "gru": dict(cell, mean=None),
            "lstm": dict(cell, mean=None),
            "warp": dict(cell, mean=1.0),
        },
    }
    checks = {t["target"]: t for t in reconstruction.targets(results)}
    phys = checks["msd: WARP-Phys >= 10x below the best baseline"]
    assert phys["met"] and phys["value"] == pytest.approx(12.5)
    assert phys["warp_over_warp_phys"] is None
    assert not checks["msd: WARP below GRU and LSTM"]["met"]
    rnn = checks["lotka_volterra: WARP below GRU and LSTM"]
    assert rnn["met"] and rnn["value"] is None
    json.dumps(checks, allow_nan=False)
    summary = dict(
        preset="cpu",
        device="cpu",
        date="today",
        complete=True,
        missing=[],
        results=results,
        targets=list(checks.values()),
    )
    assert "ratio n/a, the other model diverged" in reconstruction.markdown(summary, "x")
