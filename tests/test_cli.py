"""`warp-phys train / reconstruct / evaluate` end to end on a tiny config, and the
command line's one-line errors."""

import json
import shutil

import numpy as np
import pytest

from warp_phys import cli
from warp_phys.training.config import RunConfig
from warp_phys.training.metrics_log import read_metrics

TINY = """
system = "sine"
[data]
n_train = 16
n_val = 8
n_test = 6
[model]
root_width = 4
root_depth = 1
hyper_width = 4
[protocol]
context = 4
[optimisation]
steps = 20
val_every = 10
batch_size = 8
lr = 0.5   # overridden by the flag below
"""


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, *argv, match):
    """Run the command line; it must fail with one line containing `match` (returned)."""
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    err = err.strip()
    assert err.startswith("warp-phys: error:") and "\n" not in err, err
    assert match in err, err
    return err


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    (folder / "tiny.toml").write_text(TINY)
    out = folder / "run"
    code = cli.main(["train", "--config", str(folder / "tiny.toml"), "--lr", "0.003",
                     "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    return out


def test_train_writes_a_resolved_run_folder(run):
    for name in ["config.json", "normalizer.json", "best.eqx", "last.eqx", "metrics.jsonl",
                 "summary.json"]:  # fmt: skip
        assert (run / name).stat().st_size > 0, name
    config = json.loads((run / "config.json").read_text())
    assert config["lr"] == 0.003  # flag > file > default
    assert config["n_train"] == 16 and config["steps"] == 20 and config["hidden_size"] == 64
    assert config["eval_protocol"] == "forecast" and config["data_seed"] == 0  # resolved
    assert RunConfig.from_dict(config).lr == 0.003
    vals = [r for r in read_metrics(run / "metrics.jsonl") if "val_mse" in r]
    assert [r["step"] for r in vals] == [10, 20]


def test_evaluate_prints_a_table_and_writes_json(run, capsys):
    code, out, _ = run_cli(capsys, "evaluate", "--run", run, "--split", "val", "--n", 5)
    assert code == 0 and "MSE (raw units)" in out and "steps 4..15" in out
    result = json.loads((run / "eval_val.json").read_text())
    assert result["split"] == "val" and result["n"] == 5 and result["protocol"] == "forecast"
    assert np.isfinite(result["mse"]) and result["mse_repeat_last"] > 0


def test_reconstruct_from_csv_and_npz(run, tmp_path, capsys):
    t = np.linspace(0, 1, 16)
    y = np.sin(2 * np.pi * t + 0.3)[:, None]
    np.savetxt(tmp_path / "one.csv", y, delimiter=",", header="x", comments="")
    code, out, _ = run_cli(capsys, "reconstruct", "--run", run, "--context", 5,
                           "--input", tmp_path / "one.csv",
                           "--out", tmp_path / "a.npz")  # fmt: skip
    assert code == 0 and "MSE" in out
    with np.load(tmp_path / "a.npz") as f:
        assert f["prediction"].shape == (1, 11, 1) and f["target"].shape == (1, 11, 1)
        np.testing.assert_array_equal(f["steps"], np.arange(5, 16))
    np.savez(tmp_path / "many.npz", y=np.stack([y, -y])[:, :5])  # context only
    code, out, _ = run_cli(capsys, "reconstruct", "--run", run, "--context", 5,
                           "--input", tmp_path / "many.npz", "--horizon", 7)  # fmt: skip
    assert code == 0 and "MSE" not in out
    with np.load(run / "reconstruction.npz") as f:
        assert f["prediction"].shape == (2, 7, 1) and "target" not in f.files


def test_resume_continues_and_existing_runs_are_protected(run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    one_line_error(capsys, "train", "--system", "sine", "--out", copy, match="already holds")
    code, out, _ = run_cli(capsys, "train", "--out", copy, "--resume", "--steps", 30, "--quiet")
    assert code == 0 and "step 30" in out
    steps = [r["step"] for r in read_metrics(copy / "metrics.jsonl") if "loss" in r]
    assert steps == list(range(10, 31, 10))
    one_line_error(capsys, "train", "--out", copy, "--resume", "--batch-size", "4", "--quiet",
                   match="options differ")  # fmt: skip


def test_baseline_through_the_cli(tmp_path, capsys):
    code, out, _ = run_cli(capsys, "train", "--system", "sine", "--model", "gru", "--match-warp",
                           "--root-width", 4, "--root-depth", 1, "--hyper-width", 4,
                           "--n-train", 8, "--n-val", 4, "--n-test", 4, "--context", 4,
                           "--steps", 2, "--val-every", 2, "--out", tmp_path / "gru",
                           "--quiet")  # fmt: skip
    assert code == 0 and out.startswith("GRU")
    summary = json.loads((tmp_path / "gru/summary.json").read_text())
    assert summary["model_class"] == "GRU" and abs(summary["parameters"] - 399) < 60


def test_errors_are_one_line(run, tmp_path, capsys):
    one_line_error(capsys, "evaluate", "--run", tmp_path / "nope", match="no run folder")
    (tmp_path / "wide.csv").write_text("1,2,3\n4,5,6\n7,8,9\n")
    one_line_error(capsys, "reconstruct", "--run", run, "--context", 2,
                   "--input", tmp_path / "wide.csv", match="shape (N, T, 1)")  # fmt: skip
    (tmp_path / "nan.csv").write_text("1\n2\nnan\n4\n")
    one_line_error(capsys, "reconstruct", "--run", run, "--context", 2,
                   "--input", tmp_path / "nan.csv", match="time step 2")  # fmt: skip
    (tmp_path / "bad.toml").write_text("stepz = 3\n")
    one_line_error(capsys, "train", "--config", tmp_path / "bad.toml", "--out", tmp_path / "x",
                   match="unknown option(s) stepz")  # fmt: skip
    for bad, message in [("--bogus", "unrecognized arguments: --bogus"),
                         ("--model=rnn", "argument --model: invalid choice: 'rnn'")]:  # fmt: skip
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["train", "--out", str(tmp_path / "x"), bad])
        err = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2 and "\n" not in err
        assert err.startswith(f"warp-phys: error: {message}"), err


def test_corrupt_and_mismatched_checkpoints_are_one_line_errors(run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    raw = (copy / "best.eqx").read_bytes()
    (copy / "best.eqx").write_bytes(raw[:-50])
    one_line_error(capsys, "evaluate", "--run", copy, match="truncated")
    (copy / "best.eqx").write_bytes(b"not a checkpoint")
    one_line_error(capsys, "evaluate", "--run", copy, match="not a warp-phys checkpoint")
    config = json.loads((copy / "config.json").read_text())
    (copy / "best.eqx").write_bytes(raw)
    (copy / "config.json").write_text(json.dumps(dict(config, model="lstm")))
    one_line_error(capsys, "evaluate", "--run", copy, match="holds a WARP")


def test_help_is_complete(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    for name in RunConfig.option_names():
        assert "--" + name.replace("_", "-") in out, name
    for command in ["reconstruct", "evaluate"]:
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        assert "--run" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert all(c in out for c in ["train", "reconstruct", "evaluate", "demo", "data", "list"])
