"""The speed benchmark in smoke mode: it runs, and its JSON has the keys its report
reads; its plan (sizes, entries, FLOP and memory models) against the models."""

import json

import pytest

from benchmarks import _speed_workers as work
from benchmarks import speed


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("speed")
    out = tmp / "speed.json"
    return speed.main(["--smoke", "--reps", "2", "--out", str(out)]), out


def test_smoke_writes_json(smoke):
    result, out = smoke
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    for key in ("device", "date", "matmul_gflops", "rows", "memory", "transitions"):
        assert key in result
    assert result["matmul_gflops"] > 0
    assert result["complete"] and result["smoke"]


def test_rows_have_issue_keys_and_positive_times(smoke):
    result, _ = smoke
    assert result["rows"]
    for row in result["rows"]:
        assert {"T", "D_theta", "batch", "parallel_s", "sequential_s", "recurrence_gflops"} <= set(
            row
        )
        assert row["D_theta"] == work.model_sizes(*work.SMOKE["sizes"]["tiny"])["D_theta"]
        assert row["parallel_s"] > 0 and row["sequential_s"] > 0 and row["recurrence_gflops"] > 0
        for mode in work.MODES:
            assert 1 <= row[mode]["reps"] <= 2
            assert row[mode]["peak_rss_gb"] > 0


def test_other_sections(smoke):
    result, _ = smoke
    text = speed.markdown(result)
    assert "| T | D_theta |" in text and result["device"] in text
    assert "Incomplete" not in text


def test_structured_transition_rows(smoke):
    """memory.structured has a measured row per transition kind, the per-kind step table
    both modes per kind (dense taken from the rows), and the README block shows both."""
    result, _ = smoke
    from warp_phys._transitions import TRANSITIONS

    kinds = work.KINDS
    assert kinds == TRANSITIONS  # every kind the package has
    rows = result["memory"]["structured"]
    assert [r["kind"] for r in rows] == [e["kind"] for e in work.structured_plan(work.SMOKE)]
    assert set(kinds) == {r["kind"] for r in rows}
    for row in rows:
        assert "error" not in row, row
        assert row["peak_rss_gb"] > 0 and row["step_s"] > 0 and row["A_entries"] > 0
        assert row["A_state_gb"] == 16 * row["A_entries"] / 2**30
    table = result["transitions"]
    assert [r["kind"] for r in table["rows"]] == list(kinds)
    for row in table["rows"]:
        assert row["parallel_s"] > 0 and row["sequential_s"] > 0, row
        assert row["preferred_mode"] in work.MODES and not row["skipped"]
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
    skipped by the memory rule."""
    plan = work.structured_plan(work.FULL)
    sc = work.FULL["structured"]
    assert {e["kind"] for e in plan} >= {"dense", "diagonal", "lowrank", "block"}
    for kind in ("diagonal", "lowrank", "block"):
        big = [e for e in plan if e["kind"] == kind and e["D_theta"] >= 100_000]
        assert big and all(e["D_theta"] > 39746 and e["A_state_gb"] < 2.0 for e in big)
    for e in plan:
        if e["kind"] == "dense" and e["D_theta"] > 39746:
            D = e["D_theta"]
            need = work.memory_estimate_gb(e["T"], D, e["batch"], 32, "sequential", D * D)
            assert need > 0.7 * 24, e  # over the 70 %-of-available rule on 24 GiB
    assert any(e["kind"] == "dense" and e["D_theta"] < 39746 for e in plan)
    block = [e for e in plan if e["kind"] == "block"]
    assert max(e["largest_block"] for e in block) <= 1024
    assert sc["speed"]["root"] == work.FULL["sizes"]["5k"]  # dense from the 5k rows


def test_render_from_json(smoke, capsys):
    result, out = smoke
    capsys.readouterr()
    assert speed.main(["--render", str(out), "--no-readme"]) == json.loads(out.read_text())
    assert capsys.readouterr().out.strip() == speed.markdown(result)


def test_sizes_and_flop_model():
    sizes = [work.model_sizes(*s) for s in work.FULL["sizes"].values()]  # built abstractly
    assert [s["D_theta"] for s in sizes] == [982, 4960]
    assert sizes[1]["A_entries"] == 4960**2
    small = work.model_sizes(5, 3)["D_theta"]
    assert work.model_sizes(5, 3, "lowrank", 3)["A_entries"] == 2 * 3 * small  # U, V: (D, r)
    block = work.model_sizes(5, 3, "block")  # a weight and a bias block per layer
    assert block["blocks"] == 2 * 4 and block["A_entries"] < small**2
    flops = work.flop_model(1024, 4960, 64, 32)
    # at T = 1024, D ~ 5k, batch 64, r = 32 the parallel form is not cheaper in FLOPs
    assert 0.5 < flops["sequential"] / flops["parallel"] < 2
    assert work.flop_model(4096, 982, 64, 32)["convolution"] == "fft"


def test_paper_rows_smoke(tmp_path):
    """`--paper`: each configuration in its own worker process; scan and kernel train the
    same model from the same keys, so their losses agree to float32 rounding."""
    result = speed.main(["--paper", "--smoke", "--reps", "1", "--out", str(tmp_path / "s.json")])
    assert json.loads((tmp_path / "paper_speed_smoke.json").read_text()) == result
    assert [row["algorithm"] for row in result["paper_msd"]] == ["scan", "kernel"]
    for row in result["paper_msd"]:
        assert row["batch"] == 3 and row["warmup_steps"] == 1 and row["step_s"] > 0
        assert row["peak_rss_gb"] > 0 and len(row["load_average"]) == 2
    scan, kernel = (row["final_loss"] for row in result["paper_msd"])
    assert kernel == pytest.approx(scan, rel=1e-4)
