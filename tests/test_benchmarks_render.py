"""Every benchmark's README block is what its report makes of its committed JSON (so a
`--render` after any change to a report reproduces the README, or this test says
where it differs), and the harness's splice touches that block only."""

import json

import pytest

from benchmarks import _harness as harness
from benchmarks import anchors, anchors_context, readouts, reconstruction, speed, time_to_accuracy

BLOCKS = {
    "reconstruction": reconstruction._markdown,
    "anchors": anchors.report.markdown,
    "anchors_context": anchors_context.markdown,
    "speed": speed.markdown,
    "readouts": readouts.markdown,
    "time_to_accuracy": time_to_accuracy.markdown,
    "time_to_accuracy_forecast": time_to_accuracy.markdown,
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_committed_json_renders_the_readme_block(name):
    readme = harness.README.read_text()
    (block,) = harness.block_pattern(name).findall(readme)
    result = harness.read_json(harness.RESULTS / f"{name}.json")
    assert BLOCKS[name](result).strip() == block


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
    result = harness.run_worker("speed", "no_such_worker", {})
    assert "error" in result and "KeyError" in result["error"]
    assert json.dumps(result)  # recorded in a result JSON as it is
