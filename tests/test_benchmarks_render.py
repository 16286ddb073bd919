"""Every benchmark's README block is what its report makes of its committed JSON (so a
`--render` after any change to a report reproduces the README, or this test says
where it differs), and the harness's splice touches that block only."""

import json

import pytest

from benchmarks import _harness as harness
from benchmarks import (
    anchors,
    devices,
    irregular,
    readouts,
    reconstruction,
    speed,
    time_to_accuracy,
)

BLOCKS = {
    "reconstruction": reconstruction._markdown,
    "anchors": anchors.report.markdown,
    "speed": speed.markdown,
    "devices": devices.markdown,
    "irregular": irregular.markdown,
    "readouts": readouts.markdown,
    "time_to_accuracy": time_to_accuracy.markdown,
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_committed_json_renders_the_readme_block(name):
    readme = harness.README.read_text()
    (block,) = harness.block_pattern(name).findall(readme)
    result = harness.read_json(harness.RESULTS / f"{name}.json")
    assert BLOCKS[name](result).strip() == block


def test_render_without_a_block_prints_the_table(capsys):
    from benchmarks import generation, paper_speed

    generation.main(["--render"])
    paper_speed.main(["--render"])
    out = capsys.readouterr().out
    assert "| systems.generate (diffrax Tsit5, vmap) |" in out and "| 1024 | kernel |" in out


def test_splice_replaces_one_block_atomically(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        "intro\n<!-- bench:x -->\nold\n<!-- /bench:x -->\n<!-- bench:y -->\nkeep\n"
        "<!-- /bench:y -->\n"
    )
    assert harness.splice_readme("x", "new\nlines\n", readme)
    assert readme.read_text() == (
        "intro\n<!-- bench:x -->\nnew\nlines\n<!-- /bench:x -->\n"
        "<!-- bench:y -->\nkeep\n<!-- /bench:y -->\n"
    )
    assert not harness.splice_readme("z", "nothing", readme)
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"]


def test_timed_policy():
    calls = []
    timing = harness.timed(lambda: calls.append(1), reps=3)  # a fast first call warms up
    assert (timing["reps"], timing["warmup"], len(calls)) == (3, 1, 4)
    calls.clear()
    timing = harness.timed(lambda: calls.append(1), reps=3, warmup_s=0.0, budget_s=0.0)
    assert (timing["reps"], timing["warmup"], len(calls)) == (1, 0, 1)  # budget spent
    assert timing["median_s"] == timing["steps_s"][0] == timing["first_call_s"]


def test_worker_failure_comes_back_as_an_error():
    result = harness.run_worker("devices", "no_such_worker", {})
    assert "error" in result and "KeyError" in result["error"]
    assert json.dumps(result)  # recorded in a result JSON as it is


@pytest.mark.slow  # a worker process with two forced host devices trains twice (~10 s)
def test_devices_smoke(tmp_path):
    out = tmp_path / "devices.json"
    result = devices.main(["--smoke", "--out", str(out)])
    assert harness.read_json(out) == json.loads(json.dumps(result))
    assert result["jax_devices"] == devices.FORCED_DEVICES and set(result["runs"]) == {"1", "2"}
    assert result["max_abs_param_diff"] <= 1e-4 * max(result["max_abs_param"], 1.0)
    assert "| 2 |" in devices.markdown(result)
