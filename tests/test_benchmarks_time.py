"""The time-to-accuracy benchmark: the learning rate chosen on validation, the cells
kept and skipped on a rerun, the JSON it writes and what `--render` makes of it (with a
stand-in worker, fast), the curve read from a metrics log, and a real smoke run (slow)."""

import json

import numpy as np
import pytest

from benchmarks import _harness as harness
from benchmarks import time_to_accuracy as bench

SMOKE = ["--smoke", "--systems", "msd", "--models", "warp_phys", "gru", "--no-readme"]


def _fake_worker(calls: list):
    """A worker that trains nothing: the sweep's validation MSE is lowest at lr 1e-3
    (and its test MSE, never to be used for the choice, lowest at 3e-3)."""

    def cell(spec):
        calls.append(spec)
        val = abs(np.log10(spec["lr"]) + 3) + 0.1
        record = dict(curve={"seconds": [0.5, 1.0], "val_mse": [2 * val, val]}, steps=20)
        record.update(train_seconds=1.0, lr=spec["lr"], budget_s=spec["seconds"])
        record.update(stopped="time", best_val_mse=val, wall_seconds=2.0)
        if spec["phase"] != "sweep":
            test = {"warp_phys": 0.01, "gru": 0.5}[spec["model"]] * (1 + spec["lr"])
            record.update(test_mse=test, test_diverged=0, repeat_last_mse=40.0, params=100)
            if spec["model"] == "warp_phys":
                record.update(test_mse_refined=test / 1000, refine=20)
                keys = ("median_rel_err", "forecast_rel_std", "refined_median_rel_err")
                ident = {f"{p}_{k}": 0.05 for p in ("omega0", "zeta") for k in keys}
                record["identification"] = dict(ident, n=8, context=100)
        return record

    return cell


def test_cells_choose_on_validation_resume_and_render(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setitem(bench.WORKERS, "cell", _fake_worker(calls))
    out, figure, runs = tmp_path / "t.json", tmp_path / "t.png", tmp_path / "runs"
    argv = [*SMOKE, "--lrs", "1e-4", "1e-3", "3e-3", "--runs", str(runs), "--out", str(out)]
    result = bench.main([*argv, "--figure", str(figure)])
    assert harness.read_json(out) == json.loads(json.dumps(result))
    phases = [(c["phase"], c["model"], c["lr"]) for c in calls]
    assert phases.count(("final", "warp_phys", 1e-3)) == 1  # the validation optimum
    assert ("headline", "warp_phys", 1e-3) in phases and ("headline", "gru", 1e-3) not in phases
    assert len(calls) == 2 * 3 + 2 + 1
    row = result["results"]["msd"]
    assert set(row) == {"warp_phys", "gru"} and set(result["headline"]["msd"]) == {"warp_phys"}
    for cell in row.values():
        assert isinstance(cell["test_mse"], float) and isinstance(cell["train_seconds"], float)
        assert cell["lr"] == 1e-3 and set(cell["sweep"]) == {"0.0001", "0.001", "0.003"}
        assert len(cell["curve"]["seconds"]) == len(cell["curve"]["val_mse"])
    assert result["identification"]["omega0_median_rel_err"] == 0.05
    assert len(list(runs.rglob("*.json"))) == len(calls)

    calls.clear()  # a rerun trains nothing and gives the same result
    again = bench.main([*argv, "--figure", str(tmp_path / "again.png")])
    assert calls == [] and again["results"] == result["results"]

    capsys.readouterr()
    bench.main(["--render", str(out), "--figure", str(tmp_path / "r.png"), "--no-readme"])
    text = capsys.readouterr().out
    assert "| MSD | WARP-Phys | 0.001 |" in text and "| MSD | WARP-Phys (headline) |" in text
    ratio = row["gru"]["test_mse"] / row["warp_phys"]["test_mse"]
    assert f"| {ratio:.3g}x |" in text and "| 1x |" in text
    assert "median relative error 5 %" in text and "refined on the context: 5 %" in text
    refined = row["gru"]["test_mse"] / row["warp_phys"]["test_mse_refined"]
    assert "| MSD | WARP-Phys + refine 20 | 0.001 |" in text and f"| {refined:.3g}x |" in text
    for png in (figure, tmp_path / "r.png"):
        assert png.read_bytes()[:4] == b"\x89PNG"


def test_a_cell_trained_with_another_preset_is_trained_again(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setitem(bench.WORKERS, "cell", _fake_worker(calls))
    argv = [*SMOKE, "--models", "gru", "--no-sweep", "--lrs", "1e-3", "--runs", str(tmp_path)]
    argv += ["--out", str(tmp_path / "t.json")]
    bench.main(argv)
    spec = dict(phase="final", system="msd", model="gru", lr=1e-3, seconds=1.0, smoke=True)
    folder = bench.cell_path(tmp_path, dict(spec, protocol="default")).with_suffix("")
    config = bench.cell_config(spec).to_dict()
    harness.write_json(folder / "config.json", config)  # as train_run writes it
    assert not bench.stale(folder, spec)
    calls.clear()
    bench.main(argv)
    assert calls == []
    harness.write_json(folder / "config.json", dict(config, n_train=config["n_train"] + 1))
    assert bench.stale(folder, spec)
    bench.main(argv)
    assert [(c["phase"], c["model"]) for c in calls] == [("final", "gru")]


def test_a_failed_sweep_is_retried_and_its_pair_reported(tmp_path, monkeypatch):
    monkeypatch.setitem(bench.WORKERS, "cell", lambda spec: {"error": "killed"})
    argv = [*SMOKE, "--models", "gru", "--lrs", "1e-3", "--runs", str(tmp_path)]
    result = bench.main([*argv, "--out", str(tmp_path / "t.json")])
    assert result["results"] == {} and "killed" in result["errors"][0]
    assert "every sweep run failed" in result["errors"][1]
    assert not list(tmp_path.rglob("lr*.json"))  # nothing kept: a rerun retries it


def test_best_lr_ignores_failed_runs():
    sweep = {1e-3: {"best_val_mse": 0.2}, 3e-3: {"best_val_mse": 0.1}, 1e-2: {"error": "x"}}
    assert bench.best_lr(sweep) == 3e-3
    assert bench.best_lr({1e-3: {"best_val_mse": None}, 3e-3: {"error": "x"}}) is None


def test_a_cell_has_a_time_budget_and_no_step_count():
    spec = dict(system="msd", model="gru", lr=1e-3, seconds=12.0, smoke=False)
    config = bench.cell_config(spec)
    assert config.max_seconds == 12.0 and config.steps is None and config.lr == 1e-3


def test_the_forecast_protocol_trains_every_model_on_the_forecast(tmp_path, monkeypatch, capsys):
    spec = dict(system="msd", model="gru", lr=1e-3, seconds=12.0, smoke=False)
    default, forecast = (bench.cell_config(dict(spec, protocol=p)) for p in bench.PROTOCOLS)
    assert (default.train_context, default.forcing_prob) == (1, 0.25)  # the paper's, pinned
    assert (forecast.train_context, forecast.forcing_prob) == (default.context, 0.0)
    calls = []
    monkeypatch.setitem(bench.WORKERS, "cell", _fake_worker(calls))
    out, runs = tmp_path / "f.json", tmp_path / "runs"
    argv = [*SMOKE, "--lrs", "1e-3", "3e-3", "--runs", str(runs), "--out", str(out)]
    result = bench.main([*argv, "--protocol", "forecast"])
    assert {c["protocol"] for c in calls} == {"forecast"} and result["protocol"] == "forecast"
    assert result["headline"] == {} and "--protocol forecast" in result["command"]
    assert all("_forecast" in p.parent.parent.parent.name for p in runs.rglob("*.json"))
    capsys.readouterr()
    bench.main(["--render", str(out), "--protocol", "forecast", "--no-readme"])
    text = capsys.readouterr().out
    assert "trained on the forecast" in text and "identification" not in text.lower()
    assert "figures/" not in text and "| MSD | GRU | 0.001 |" in text


def test_curve_times_the_validations_from_the_log(tmp_path):
    log = [dict(step=10, loss=1.0, seconds=2.0), dict(step=15, val_mse=0.5),
           dict(step=20, loss=0.9, seconds=4.0), dict(step=25, val_mse=float("nan"))]  # fmt: skip
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    got = bench.curve(tmp_path)
    assert got["curve"] == {"seconds": [3.0, 5.0], "val_mse": [0.5, None]}
    assert got["steps"] == 25 and got["train_seconds"] == 5.0


@pytest.mark.slow  # trains 5 tiny cells in this process (~25 s)
def test_smoke_run_trains_scores_and_identifies(tmp_path, monkeypatch):
    out, runs = tmp_path / "t.json", tmp_path / "runs"
    argv = [*SMOKE, "--lrs", "1e-3", "--runs", str(runs), "--out", str(out)]
    result = bench.main([*argv, "--figure", str(tmp_path / "t.png")])
    for cell in [*result["results"]["msd"].values(), result["headline"]["msd"]["warp_phys"]]:
        assert cell["test_mse"] > 0 and cell["train_seconds"] > 0 and cell["steps"] >= 1
        assert cell["best_val_mse"] == min(v for v in cell["curve"]["val_mse"] if v is not None)
    ident = result["identification"]
    assert ident["n"] == 8 and ident["context"] == 100
    assert all(np.isfinite(v) and v >= 0 for k, v in ident.items() if "rel" in k)
    monkeypatch.setitem(bench.WORKERS, "cell", None)  # a rerun must not train
    assert (
        bench.main([*argv, "--figure", str(tmp_path / "again.png")])["results"] == result["results"]
    )


def test_worker_flag_runs_one_cell_only(monkeypatch, capsys):
    """`--worker cell SPEC` (what `run_worker` starts) trains that cell and prints its
    record; it must not start the benchmark (which would start workers in turn)."""
    monkeypatch.setitem(bench.WORKERS, "cell", lambda spec: {"lr": spec["lr"]})
    monkeypatch.setattr(bench, "measure", None)
    assert bench.main(["--worker", "cell", json.dumps({"lr": 0.5})]) == {"lr": 0.5}
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"lr": 0.5}
