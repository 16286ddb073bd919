"""benchmarks/tasks.py: a smoke run (ICL, every model, tiny), its JSON contract and
`--render`; the report and the figures of all four tasks from made-up cells."""

import json

import jax
import numpy as np
import pytest

from benchmarks import tasks

KEYS = {"metric", "mean", "std", "values", "seconds"}
CACHE = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")


def test_smoke_run_writes_the_contract_and_renders(tmp_path, capsys):
    out, figure = tmp_path / "tasks.json", tmp_path / "tasks.png"
    argv = ["--smoke", "--tasks", "icl", "--out", str(out), "--figure", str(figure)]
    tasks.main(argv)
    saved = json.loads(out.read_text())
    assert set(saved["results"]["icl"]) == {"warp", "gru", "lstm", "transformer"}
    for row in saved["results"]["icl"].values():
        assert KEYS <= set(row) and row["metric"] == "mse" and np.isfinite(row["mean"])
    assert len(saved["curves"]["icl"]["least_squares"]) == 6
    assert (tmp_path / "tasks_icl.png").exists()
    capsys.readouterr()
    cache = [getattr(jax.config, name) for name in CACHE]
    tasks.main(["--render", str(out), "--figure", str(figure), "--no-readme"])
    assert "| icl | MSE |" in capsys.readouterr().out
    # --render measures nothing: JAX's persistent cache (runs/jax_cache) stays off, or every
    # later test of the process would write its programs into the checkout
    assert [getattr(jax.config, name) for name in CACHE] == cache


def test_report_and_figures_of_every_task(tmp_path, capsys):
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    cells = {}
    for task, metric in (("basic_motions", "accuracy"), ("japanese_vowels", "accuracy"),
                         ("digits", "mse"), ("icl", "mse")):  # fmt: skip
        for model in tasks.MODELS:
            for seed in (0, 1):
                cell = {"metric": metric, metric: float(rng.uniform()), "seconds": 1.0}
                cell.update(bpd=2.0, completions=rng.uniform(size=(8, 32)).tolist())
                cell.update(least_squares=0.1, pairs=8, curve=list(rng.uniform(size=16)),
                            ls_curve=list(rng.uniform(size=16)))  # fmt: skip
                cells[f"{task}/{model}/{seed}"] = cell
    result = tasks.summarise(cells, list(tasks.TASKS), (0, 1))
    result.update(device="cpu", date="today", load=1.0)
    values = [cells[f"digits/gru/{s}"]["mse"] for s in (0, 1)]
    assert np.isclose(result["results"]["digits"]["gru"]["mean"], np.mean(values))
    text = tasks.markdown(result)
    assert "| basic_motions | accuracy % |" in text and "| digits | BPD |" in text
    tasks.draw(result, tmp_path / "tasks.png")
    assert sorted(p.name for p in tmp_path.glob("tasks_*.png")) == [
        f"tasks_{t}.png" for t in sorted(tasks.TASKS)
    ]
