"""The step profile's smoke run: every setting timed, the table rendered from its JSON."""

import json

from benchmarks import step_profile


def test_step_profile_smoke(tmp_path, capsys):
    out = tmp_path / "profile.json"
    result = step_profile.main(["--smoke", "--fused", "3", "--rounds", "1", "--out", str(out)])
    assert json.loads(out.read_text())["rows"].keys() == {"1", "3"}
    assert all(row["ms_per_step"] > 0 and row["runs"] == 1 for row in result["rows"].values())
    assert result["rows"]["1"]["speedup"] == 1.0 and result["floor_ms"] > 0
    capsys.readouterr()
    step_profile.main(["--render", str(out)])
    assert "| 3 |" in capsys.readouterr().out
