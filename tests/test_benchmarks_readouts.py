"""The readouts benchmark: one cell trains and is scored in this process, and the table
renders from the cells."""

import pytest

from benchmarks import readouts


def test_one_cell_trains_scores_and_renders(tmp_path):
    spec = dict(options=readouts.CELLS["direct"], steps=2, n_train=16, n_val=4)
    cell = readouts.cell(dict(spec, folder=str(tmp_path / "direct")))
    assert cell["theta_size"] == 2 and cell["steps"] == 2 and cell["val_forecast_mse"] > 0
    assert all(cell[f"{p}_median_rel_err"] >= 0 for p in ("omega0", "zeta"))
    result = dict(steps=2, n_train=16, n_val=4, device="cpu", date="now", cells={"direct": cell})
    assert "| direct | 2 |" in readouts.markdown(result)


def test_a_row_overrides_the_pinned_run_options(monkeypatch, tmp_path):
    """SETTINGS pin the difference drive; a row that sets the drive (a RunConfig option)
    replaces it (once a TypeError: the keyword twice)."""
    seen = {}

    def train_run(config, *args, **kwargs):
        seen["config"] = config
        raise InterruptedError  # stop before any training

    monkeypatch.setattr(readouts.wp, "train_run", train_run)
    name = "weights, feature drive 64, scale-free, seed 1"
    spec = dict(options=readouts.CELLS[name], steps=2, n_train=16, n_val=4, folder=str(tmp_path))
    with pytest.raises(InterruptedError):
        readouts.cell(spec)
    config = seen["config"]
    assert (config.drive_features, config.drive_scale_free, config.seed) == (64, True, 1)
    assert readouts.SETTINGS["drive_features"] == 0
