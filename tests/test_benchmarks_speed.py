"""The speed benchmark in smoke mode: it runs, and its JSON has the keys other tools read."""

import json

import pytest

from benchmarks import speed


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("speed")
    out, figure = tmp / "speed.json", tmp / "speed.png"
    result = speed.main(["--smoke", "--reps", "2", "--out", str(out), "--figure", str(figure)])
    return result, out, figure


def test_smoke_writes_json_and_figure(smoke):
    result, out, figure = smoke
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert figure.stat().st_size > 1000
    for key in ("device", "date", "matmul_gflops", "rows", "paper_msd", "memory", "inference"):
        assert key in result
    assert result["matmul_gflops"] > 0
    assert result["complete"] and result["smoke"]


def test_rows_have_issue_keys_and_positive_times(smoke):
    result, _, _ = smoke
    assert result["rows"]
    for row in result["rows"]:
        assert {"T", "D_theta", "batch", "parallel_s", "sequential_s", "recurrence_gflops"} <= set(
            row
        )
        assert row["D_theta"] == speed.theta_size(*speed.SMOKE["sizes"]["tiny"])
        assert row["parallel_s"] > 0 and row["sequential_s"] > 0 and row["recurrence_gflops"] > 0
        for mode in speed.MODES:
            assert 1 <= row[mode]["reps"] <= 2
            assert row[mode]["peak_rss_gb"] > 0


def test_other_sections(smoke):
    result, _, _ = smoke
    for row in result["paper_msd"]:
        assert {"batch", "algorithm", "step_s", "peak_rss_gb"} <= set(row)
        assert row["step_s"] > 0
    inference = result["inference"]
    assert inference["trajectories_per_s"] > 0
    (gru,) = result["warp_vs_gru"]
    assert gru["gru_s"] > 0
    assert abs(gru["gru_params"] - gru["params"]) / gru["params"] < 0.2
    assert all(row["peak_rss_gb"] > 0 for row in result["memory"]["rows"])
    text = speed.markdown(result)
    assert "| T | D_theta |" in text and result["device"] in text
    assert "Incomplete" not in text


def test_structured_transition_rows(smoke):
    """memory.structured has a measured row per transition kind, the per-kind step table
    both modes per kind (dense taken from the rows), and the README block shows both."""
    result, _, _ = smoke
    kinds = speed.transition_kinds()
    assert {"dense", "diagonal", "lowrank", "block"} <= set(kinds)
    rows = result["memory"]["structured"]
    assert [r["kind"] for r in rows] == [e["kind"] for e in speed.structured_plan(speed.SMOKE)]
    assert set(kinds) == {r["kind"] for r in rows}
    for row in rows:
        assert "error" not in row, row
        assert row["peak_rss_gb"] > 0 and row["step_s"] > 0 and row["A_entries"] > 0
        assert row["A_state_gb"] == 16 * row["A_entries"] / 2**30
    table = result["transitions"]
    assert [r["kind"] for r in table["rows"]] == list(kinds)
    for row in table["rows"]:
        assert row["parallel_s"] > 0 and row["sequential_s"] > 0, row
        assert row["preferred_mode"] in speed.MODES and not row["skipped"]
    dense = table["rows"][0]
    (ref,) = [r for r in result["rows"] if (r["T"], r["D_theta"]) == (dense["T"], dense["D_theta"])]
    assert (dense["parallel_s"], dense["sequential_s"]) == (ref["parallel_s"], ref["sequential_s"])
    text = speed.markdown(result)
    assert "Structured transitions: memory vs D_theta" in text
    assert "Training step per transition kind" in text and "| lowrank (r = 2) |" in text


def test_full_plan_reaches_past_the_dense_limit():
    """Planned, not run: every structured kind has a row at D_theta >= 100k, above where
    a dense A's training state (16 D^2 bytes) stops fitting on the 24 GiB machine
    (memory.dense_A_limit_D = 39746), with an A state far below it; dense there would be
    skipped by the memory rule; A's entries are the models' own."""
    import equinox as eqx
    import jax

    from benchmarks._speed_workers import _warp, memory_estimate_gb, transition_entries

    plan = speed.structured_plan(speed.FULL)
    sc = speed.FULL["structured"]
    assert {e["kind"] for e in plan} >= {"dense", "diagonal", "lowrank", "block"}
    for kind in ("diagonal", "lowrank", "block"):
        big = [e for e in plan if e["kind"] == kind and e["D_theta"] >= 100_000]
        assert big and all(e["D_theta"] > 39746 and e["A_state_gb"] < 2.0 for e in big)
    for e in plan:
        if e["kind"] == "dense" and e["D_theta"] > 39746:
            need = memory_estimate_gb(e["T"], e["D_theta"], e["batch"], 32, "sequential")
            assert need > 0.7 * 24, e  # over the 70 %-of-available rule on 24 GiB
    assert any(e["kind"] == "dense" and e["D_theta"] < 39746 for e in plan)
    block = [e for e in plan if e["kind"] == "block"]
    assert max(e["largest_block"] for e in block) <= 1024
    for kind in speed.transition_kinds():  # A's entries as counted from a small model
        model = _warp(5, 3, 8, 4, kind, 3 if kind == "lowrank" else None)
        leaves = jax.tree.leaves(eqx.filter(model.transition, eqx.is_array))
        assert sum(x.size for x in leaves) == transition_entries(kind, 5, 3, 3)
        assert model.theta_size == speed.theta_size(5, 3)
    assert sc["speed"]["root"] == speed.FULL["sizes"]["5k"]  # dense from the 5k rows


def test_merge_structured_fills_dense_from_rows():
    row = {"T": 256, "D_theta": 4960, "parallel_s": 2.0, "sequential_s": 3.0, "skipped": []}
    result = {"rows": [row], "memory": {"rows": [], "structured": []}}
    part = {
        "command": "python -m benchmarks.speed --part structured",
        "date": "2026-01-01T00:00:00+00:00",
        "memory": {"structured": [{"kind": "diagonal", "D_theta": 100162}]},
        "transitions": {"T": 256, "batch": 64, "rows": [
            {"kind": "dense", "T": 256, "D_theta": 4960, "parallel_s": None,
             "sequential_s": None, "skipped": ["dense: no row"]},
            {"kind": "diagonal", "T": 256, "D_theta": 4960, "parallel_s": 1.0,
             "sequential_s": 0.5, "skipped": []}]},
    }  # fmt: skip
    merged = speed.merge_structured(result, part)
    assert merged["memory"]["structured"] == part["memory"]["structured"]
    dense, diagonal = merged["transitions"]["rows"]
    assert (dense["parallel_s"], dense["sequential_s"], dense["skipped"]) == (2.0, 3.0, [])
    assert diagonal == part["transitions"]["rows"][1] and "structured_part" in merged
    assert result["memory"]["structured"] == []  # not modified in place


def test_render_redraws_from_json(smoke, tmp_path):
    _, out, _ = smoke
    figure = tmp_path / "again.png"
    result = speed.main(["--render", str(out), "--figure", str(figure), "--no-readme"])
    assert figure.exists() and result["rows"]


def test_theta_sizes_and_flop_model():
    import jax

    import warp_phys as wp

    for width, depth in speed.FULL["sizes"].values():
        model = wp.WARP(2, root_width=width, root_depth=depth, key=jax.random.PRNGKey(0))
        assert model.theta_size == speed.theta_size(width, depth)
    assert [speed.theta_size(*s) for s in speed.FULL["sizes"].values()] == [982, 4960]
    flops = speed.flop_model(1024, 4960, 64, 32)
    # at T = 1024, D ~ 5k, batch 64, r = 32 the parallel form is not cheaper in FLOPs
    assert 0.5 < flops["sequential"] / flops["parallel"] < 2
    assert speed.flop_model(4096, 982, 64, 32)["convolution"] == "fft"


def test_merge_side_fills_warp_times_and_completeness():
    row = {"T": 256, "D_theta": 982, "parallel_s": 2.0, "sequential_s": 3.0, "skipped": []}
    cut = {"T": 4096, "D_theta": 982, "parallel_s": None, "sequential_s": None,
           "skipped": ["parallel not run: the --time-limit of 1 min was spent"]}  # fmt: skip
    result = {"rows": [row], "inference": {"error": "not run"}, "memory": {}, "warp_vs_gru": []}
    side = {
        "command": "python -m benchmarks.speed --part side",
        "date": "2026-01-01T00:00:00+00:00",
        "inference": {"trajectories_per_s": 10.0},
        "memory": {"rows": [{"D_theta": 982, "peak_rss_gb": 1.0}]},
        "warp_vs_gru": [{"D_theta": 982, "T": 256, "params": 1000, "gru_s": 1.0}],
    }
    merged = speed.merge_side(result, side)
    assert merged["inference"] == side["inference"] and merged["memory"] == side["memory"]
    (entry,) = merged["warp_vs_gru"]
    assert (entry["warp_parallel_s"], entry["warp_sequential_s"]) == (2.0, 3.0)
    assert merged["complete"] and "side_part" in merged
    assert not speed.merge_side(dict(result, rows=[row, cut]), side)["complete"]
