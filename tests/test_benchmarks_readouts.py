"""The readouts benchmark: one cell trains and is scored in this process, and the table
renders from the cells."""

from benchmarks import readouts


def test_one_cell_trains_scores_and_renders(tmp_path):
    spec = dict(options=readouts.CELLS["direct"], steps=2, n_train=16, n_val=4)
    cell = readouts.cell(dict(spec, folder=str(tmp_path / "direct")))
    assert cell["theta_size"] == 2 and cell["steps"] == 2 and cell["val_forecast_mse"] > 0
    assert all(cell[f"{p}_median_rel_err"] >= 0 for p in ("omega0", "zeta"))
    result = dict(steps=2, n_train=16, n_val=4, device="cpu", date="now", cells={"direct": cell})
    assert "| direct | 2 |" in readouts.markdown(result)
