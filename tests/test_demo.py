"""The main job and the command line, end to end on tiny settings."""

import json

import jax
import matplotlib.pyplot as plt
import numpy as np
import pytest

import warp_phys as wp
from warp_phys import cli, demo
from warp_phys.plotting import plot_reconstruction, plot_weights, weight_groups


def test_demo_runs_end_to_end(tmp_path, capsys):
    # one test trajectory: the parameter table's prior fit then has the shape of the
    # physics figure's (its first trajectory) and compiles once, not twice (CPU time on
    # one core 84 -> 72 s); the reconstruction figure still forecasts a batch of three
    summary = demo.main(
        [
            "--n-train", "8", "--n-val", "4", "--n-test", "1", "--steps", "3",
            "--batch-size", "4", "--root-width", "4", "--root-depth", "1", "--quiet",
            "--out", str(tmp_path / "run"), "--figures", str(tmp_path / "fig"),
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "repeat last value" in out and str(tmp_path / "fig") in out
    for name in ["run/best.eqx", "run/last.eqx", "run/summary.json", "run/config.json",
                 "fig/demo_reconstruction.png", "fig/demo_weights.png",
                 "fig/demo_physics.png"]:  # fmt: skip
        assert (tmp_path / name).stat().st_size > 0, name
    saved = json.loads((tmp_path / "fig/demo_summary.json").read_text())
    assert saved["train_steps"] == 3 and saved["horizon"] == 156
    assert np.isfinite(saved["test_mse_warp"]) and saved["test_mse_repeat_last"] > 0
    assert summary == saved and saved["decoder"] == "damped_oscillator"
    assert set(saved["identification_median_rel_err"]) == {"omega0", "zeta"}
    assert set(saved["identification_refined_median_rel_err"]) == {"omega0", "zeta"}
    assert saved["refine"] == 20 and np.isfinite(saved["test_mse_refined"])
    assert "refined (20 steps)" in out
    wp.load_model(tmp_path / "run/best.eqx")
    run = wp.load_run(tmp_path / "run")  # an ordinary run folder
    assert run.config.context == 100 and run.config.max_seconds == 150.0
    # the plot command reads the demo's run folder
    out = tmp_path / "fig/weights.png"
    assert cli.main(["plot", "weights", "--run", str(tmp_path / "run"), "--out", str(out)]) == 0
    assert out.stat().st_size > 0
    out = tmp_path / "fig/physics.png"
    assert cli.main(["plot", "physics", "--run", str(tmp_path / "run"), "--out", str(out)]) == 0


def test_weight_groups_cover_theta_in_order():
    model = wp.WARP(2, root_width=5, root_depth=1, key=jax.random.PRNGKey(0))
    groups = weight_groups(model.decoder)
    assert groups[0][1] == 0 and groups[-1][2] == model.theta_size
    assert all(a[2] == b[1] for a, b in zip(groups[:-1], groups[1:], strict=True))
    assert {g[0] for g in groups} == {
        "layer 0 bias",
        "layer 0 weight",
        "layer 1 bias",
        "layer 1 weight",
    }


def test_plots_have_the_expected_axes():
    t = np.linspace(0, 1, 20)
    truth = np.random.default_rng(0).normal(size=(2, 20, 3))
    fig = plot_reconstruction(t, truth, truth[:, 5:], 5, std=np.ones((2, 15, 3)))
    assert len(fig.axes) == 6 and all(ax.lines for ax in fig.axes)
    plt.close(fig)
    fig = plot_weights(np.random.default_rng(1).normal(size=(20, 30)), context=5)
    assert len(fig.axes) == 3 and fig.axes[1].lines  # map, norms, colour bar
    plt.close(fig)


def test_cli_list_and_data(tmp_path, capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "mlp" in out and "msd" in out
    target = tmp_path / "msd.npz"
    assert cli.main(["data", "--system", "msd", "--n", "3", "--out", str(target)]) == 0
    assert "(3, 256, 2)" in capsys.readouterr().out and target.stat().st_size > 0


def test_cli_errors_are_one_line(capsys):
    assert cli.main(["data", "--system", "no_such_system", "--n", "2", "--out", "x.npz"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("warp-phys: error: unknown system") and "\n" not in err
    with pytest.raises(SystemExit):
        cli.main(["list", "--bogus"])
