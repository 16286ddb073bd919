"""Atomic file output: the file appears whole with the usual permissions, or not at all."""

import stat

import pytest

from systems import atomic_path, atomic_write_bytes


def test_atomic_write_bytes(tmp_path):
    path = atomic_write_bytes(tmp_path / "sub" / "a.json", b"{}\n")
    assert path.read_bytes() == b"{}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    atomic_write_bytes(path, b"[]\n")  # replaces
    assert path.read_bytes() == b"[]\n" and [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_atomic_path_keeps_the_suffix_and_cleans_up_on_error(tmp_path):
    target = tmp_path / "fig.svg"
    with atomic_path(target, suffix=".svg") as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".svg" and not target.exists()
        tmp.write_text("<svg/>")
    assert target.read_text() == "<svg/>"
    with pytest.raises(RuntimeError, match="writer failed"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert target.read_text() == "<svg/>" and [p.name for p in tmp_path.iterdir()] == ["fig.svg"]
