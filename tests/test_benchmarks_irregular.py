"""The irregular-grid benchmark: its report (the README block and the figure, drawn
from a result of the shape `main` writes) and its scores on a briefly trained run
against the model's own teacher-forced prediction (the training itself is the public
`train_run` path, tested in test_irregular.py); the whole smoke run is slow."""

import json

import numpy as np
import pytest

from benchmarks import irregular


def _result():
    rng = np.random.default_rng(0)
    results = {
        root: {
            setting: {
                "forecast_mse": float(rng.uniform(1, 9)),
                "forecast_std": 0.5,
                "one_step_mse": float(rng.uniform(0.01, 1)),
                "repeat_last_mse": 44.7,
                "seeds": [],
            }
            for setting in irregular.SETTINGS
        }
        for root in irregular.ROOTS
    }
    spec = dict(irregular.SMOKE, seeds=None)
    result = {
        "device": "cpu: test",
        "date": "2026-01-01T00:00:00+00:00",
        "wall_s": 60.0,
        "command": "python -m benchmarks.irregular",
        "seeds": [0, 1],
        "spec": spec,
        "results": results,
    }
    T, L = spec["n_steps"], spec["context"]
    example = {
        root: {s: rng.normal(size=T - L).tolist() for s in irregular.PLOTTED}
        for root in irregular.ROOTS
    }
    example.update(t=np.sort(rng.uniform(0, 1, T)).tolist(), truth=rng.normal(size=T).tolist())
    return dict(result, example=example)


def test_markdown_reports_every_root_and_setting_and_their_ratios():
    result = _result()
    text = irregular.markdown(result)
    rows = [line for line in text.splitlines() if line.startswith("| [tau")]
    assert len(rows) == len(irregular.ROOTS) * len(irregular.SETTINGS)
    for root in irregular.ROOTS:
        r = result["results"][root]
        plain = r["irregular_plain"]["forecast_mse"]
        aware = r["irregular_time_aware"]["forecast_mse"]
        assert f"({plain / aware:.2f}x)" in text
    assert "figures/irregular.png" in text


def test_plot_writes_a_png_from_the_json_alone(tmp_path, capsys):
    result = json.loads(json.dumps(_result()))
    irregular.plot(result, tmp_path / "irregular.png")
    assert (tmp_path / "irregular.png").read_bytes()[:4] == b"\x89PNG"
    del result["example"]  # a result from before the JSON kept the example: no figure
    irregular.plot(result, tmp_path / "old.png")
    assert not (tmp_path / "old.png").exists() and "not drawn" in capsys.readouterr().out


def test_scores_match_the_models_own_predictions(tmp_path):
    """The forecast and the one-step MSE of a run (its untrained model) on the regular
    grid: the latter is the teacher-forced prediction `model(x)` of every next step."""
    import jax

    import systems
    import warp_phys as wp

    spec = irregular.SMOKE
    test = systems.generate("msd", 8, split="test", n_steps=spec["n_steps"], progress=False)
    config = irregular._config(spec, "tau_x_prev", 0)
    normalizer = wp.Normalizer.fit(test.y)
    model = wp.build_model(
        config, 2, spec["n_steps"], key=jax.random.PRNGKey(0), normalizer=normalizer
    )
    run = wp.Run(tmp_path, config, model, normalizer)
    scores = irregular._score(run, test, spec["context"])
    prediction = jax.vmap(run.model)(run.normalizer.apply(test.y))
    one_step = np.mean((np.asarray(run.normalizer.invert(prediction)) - test.y[:, 1:]) ** 2)
    assert scores["one_step_mse"] == pytest.approx(float(one_step), rel=1e-5)
    forecast = wp.reconstruct_run(run, test.y, context=spec["context"])
    assert scores["forecast_mse"] == pytest.approx(forecast["mse"], rel=1e-5)
    assert scores["repeat_last_mse"] > 0 and scores["diverged"] == 0


@pytest.mark.slow
def test_smoke_run_writes_json_figure_and_renders_again(tmp_path):
    out, figure = tmp_path / "irregular.json", tmp_path / "irregular.png"
    result = irregular.main(["--smoke", "--out", str(out), "--figure", str(figure)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert set(result["example"]) == {"t", "truth", *irregular.ROOTS} and figure.is_file()
    again = tmp_path / "again.png"
    irregular.main(["--render", str(out), "--figure", str(again)])
    assert again.read_bytes() == figure.read_bytes()
