"""Hostile and broken data files: each gives a one-line `ValueError` (or
`FileNotFoundError`), never a traceback or a silently wrong number; property-based
checks of `systems.load` on random files and of the writers' round trips."""

import ast
import builtins
import errno
import io
import os
import re
import signal
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import systems
from warp_phys import cli


def _npy_bytes(header: str, data: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    """A `.npy` file with the header dict text `header` (padded as numpy pads it)."""
    size = 4 if version[0] >= 2 else 2
    pad = 63 - (len(header) + 6 + 2 + size) % 64
    text = (header + " " * pad + "\n").encode("latin1")
    fmt = "<I" if size == 4 else "<H"
    return b"\x93NUMPY" + bytes(version) + struct.pack(fmt, len(text)) + text + data


def _array_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array)
    return buffer.getvalue()


def _one_line_error(path, kinds=(ValueError,)):
    with pytest.raises(kinds) as info:
        systems.load(path)
    message = str(info.value)
    assert message and "\n" not in message and "\r" not in message
    return message


# ------------------------------------------------------- item 5: uncaught exceptions
def test_csv_with_carriage_return_line_ends_and_a_huge_field(tmp_path):
    (tmp_path / "mac.csv").write_bytes(b"time,x\r0,1\r1,2.5\r")
    (tmp_path / "unix.csv").write_bytes(b"time,x\n0,1\n1,2.5\n")
    mac, unix = systems.load(tmp_path / "mac.csv"), systems.load(tmp_path / "unix.csv")
    np.testing.assert_array_equal(mac.y, unix.y)
    np.testing.assert_array_equal(mac.t, unix.t)
    (tmp_path / "huge.csv").write_text("x\n" + "1" * 200_000 + "\n2\n")
    assert "huge.csv, line 2: not readable as CSV" in _one_line_error(tmp_path / "huge.csv")


@pytest.mark.parametrize("suffix", [".csv", ".npy", ".npz"])
def test_an_unreadable_file(tmp_path, monkeypatch, suffix):
    path = tmp_path / f"secret{suffix}"
    if suffix == ".csv":
        path.write_text("x\n1\n2\n")
    else:
        (np.save if suffix == ".npy" else np.savez)(path, np.zeros((2, 3)))
    path.chmod(0)
    if os.geteuid() == 0:  # root reads anything: refuse the file as the system would a user
        real = io.open

        def denied(file, *args, **kwargs):
            if isinstance(file, (str, os.PathLike)) and Path(file) == path:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
            return real(file, *args, **kwargs)

        monkeypatch.setattr(io, "open", denied)
        monkeypatch.setattr(builtins, "open", denied)
    assert f"cannot read {path}: Permission denied" in _one_line_error(path)


def test_folders_links_and_devices_where_a_file_should_be(tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / "a.csv").write_text("x\n1\n2\n")
    (folder / "x.csv").mkdir()
    assert "x.csv is a folder, not a CSV file" in _one_line_error(folder)
    (folder / "x.csv").rmdir()
    (folder / "loop.csv").symlink_to(folder / "loop.csv")
    assert re.search(r"cannot read .*loop\.csv: ", _one_line_error(folder))
    assert re.search(r"cannot read .*loop\.csv: ", _one_line_error(folder / "loop.csv"))
    (folder / "loop.csv").unlink()
    (folder / "gone.csv").symlink_to(tmp_path / "missing.csv")
    message = _one_line_error(folder / "gone.csv", FileNotFoundError)
    assert "a link to a missing file" in message
    (folder / "gone.csv").unlink()
    os.mkfifo(tmp_path / "pipe.csv")  # opening a pipe would wait for a writer forever

    def hung(*_):
        raise TimeoutError("systems.load opened the pipe and waited")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        assert "not a regular file" in _one_line_error(tmp_path / "pipe.csv")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_an_array_header_that_declares_more_data_than_the_file_holds(tmp_path):
    tib = "{'descr': '<f4', 'fortran_order': False, 'shape': (274877906944,), }"
    (tmp_path / "huge.npy").write_bytes(_npy_bytes(tib, bytes(64)))
    message = _one_line_error(tmp_path / "huge.npy")
    assert "declares a (274877906944,) array of float32 (1 TiB)" in message
    assert "only 64 bytes of data follow" in message
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as archive:
        archive.writestr("y.npy", (tmp_path / "huge.npy").read_bytes())
    assert "member 'y.npy' declares" in _one_line_error(tmp_path / "huge.npz")
    with zipfile.ZipFile(tmp_path / "saved.npz", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.npy", _array_bytes(np.array("{}")))
        archive.writestr("y.npy", (tmp_path / "huge.npy").read_bytes())
    assert "member 'y.npy' declares" in _one_line_error(tmp_path / "saved.npz")
    # the zip entry lies too: a stored member claims 3 GiB, the archive has ~200 bytes
    gib3 = "{'descr': '<f4', 'fortran_order': False, 'shape': (805306368,), }"
    with zipfile.ZipFile(tmp_path / "lying.npz", "w") as archive:
        archive.writestr("y.npy", _npy_bytes(gib3, bytes(64)))
    blob = bytearray((tmp_path / "lying.npz").read_bytes())
    entry = blob.index(b"PK\x01\x02")  # the central directory's entry: sizes at +20, +24
    blob[entry + 24 : entry + 28] = struct.pack("<I", 3 * 2**30 + 128)
    (tmp_path / "lying.npz").write_bytes(bytes(blob))
    assert "member 'y.npy' claims 3 GiB from" in _one_line_error(tmp_path / "lying.npz")
    negative = "{'descr': '<f4', 'fortran_order': False, 'shape': (-4, 2), }"
    (tmp_path / "negative.npy").write_bytes(_npy_bytes(negative, bytes(64)))
    assert "negative shape" in _one_line_error(tmp_path / "negative.npy")


def test_a_saved_data_set_whose_arrays_do_not_fit_together(tmp_path):
    ds = systems.from_arrays(np.ones((3, 4, 2), np.float32), np.arange(4.0) / 10)
    path = systems.save(ds, tmp_path / "good.npz")
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    bad_y = np.array(arrays["y"])
    bad_y[1, 2, 0] = np.nan
    for change, match in (
        ({"y": bad_y}, "y must be finite float32"),
        ({"y": arrays["y"].astype(np.float64)}, "y must be finite float32"),
        ({"t": arrays["t"][:3]}, "t must be finite floats (4,)"),
        ({"y0": arrays["y0"][:2]}, "y0 must be real (3, 2)"),
        ({"extras/t": np.zeros((2, 4))}, "'t' must have 3 rows"),
    ):
        np.savez(tmp_path / "bad.npz", **{**arrays, **change})
        message = _one_line_error(tmp_path / "bad.npz")
        assert "not a valid systems data set" in message and match in message
    np.testing.assert_array_equal(systems.load(path).y, ds.y)


# ------------------------------------------------------------- item 6: silent answers
def test_values_beyond_float32_are_refused_where_they_are(tmp_path, capsys):
    y = np.zeros((3, 4, 2))
    y[1, 2, 0] = 1e39
    np.savez(tmp_path / "big.npz", y=y, channels=np.array(["x", "v"]))
    message = _one_line_error(tmp_path / "big.npz")
    assert "1 value(s) beyond float32's range" in message
    assert "the first, 1e+39, is in trajectory '1' (index 1) at time step 2" in message
    assert "channel 'x'" in message and "big.npz" in message
    (tmp_path / "big.csv").write_text("trajectory,time,x,v\na,0,1,1\na,1,1,-1e39\n")
    out = tmp_path / "converted.npz"
    assert cli.main(["data", "--from", str(tmp_path / "big.csv"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "beyond float32's range" in err and "channel 'v'" in err and not out.exists()
    np.savez(tmp_path / "edge.npz", y=np.full((1, 2, 1), 3.4e38))  # still a float32
    assert np.isfinite(systems.load(tmp_path / "edge.npz").y).all()


def test_complex_arrays_are_refused(tmp_path):
    np.savez(tmp_path / "c.npz", y=np.ones((2, 3, 1)) * (1 + 2j))
    np.save(tmp_path / "c.npy", np.ones((3, 2), np.complex64))
    np.savez(tmp_path / "ct.npz", y=np.ones((2, 3, 1)), t=np.arange(3) + 0j)
    for name, what in (("c.npz", "trajectories"), ("c.npy", "trajectories"), ("ct.npz", "times")):
        assert f"{what} are complex" in _one_line_error(tmp_path / name)


@pytest.mark.parametrize("cell", ["1_000", "\u0661\u0662", "\uff11", "1e", "--1", "0x1A", "1,5"])
def test_only_plain_ascii_numbers_are_numbers(tmp_path, cell):
    path = tmp_path / "cells.csv"
    path.write_text(f'time,x\n0,1\n1,"{cell}"\n', encoding="utf-8")
    message = _one_line_error(path)
    assert "line 3, column 'x'" in message and "is not a number" in message


def test_plain_numbers_are_read_as_before(tmp_path):
    cells = ["1", "-1.5", "+.5", "7.", "2e-3", "1E+3", " 4 "]
    path = tmp_path / "ok.csv"
    path.write_text("x\n" + "\n".join(cells) + "\n")
    expected = np.array([float(c) for c in cells], np.float32)
    np.testing.assert_array_equal(systems.load(path).y[0, :, 0], expected)
    for spelled in ("nan", "-Infinity", "INF"):
        path.write_text(f"x\n1\n{spelled}\n")
        assert "non-finite value(s)" in _one_line_error(path)


def test_save_csv_refuses_tables_that_would_not_read_back(tmp_path):
    two, one = np.zeros((2, 3, 1), np.float32), np.zeros((1, 3, 1), np.float32)
    times = np.broadcast_to(np.arange(3.0), (2, 3))
    cases = [  # each table would read back with other columns, trajectories or ids
        (two, dict(channels=["time"], times=times, time_column="step"), "would not read back"),
        (one, dict(channels=["trajectory"]), "would not read back"),
        (one, dict(channels=["1"]), "only numbers"),
        (two, dict(channels=["x"], ids=["a", "a"]), "ids must be unique"),
        (two, dict(channels=["x"], ids=["#a", "b"]), "not start with '#'"),
        (two, dict(channels=["x", "y"]), "2 channel names and 2 ids"),
        (one, dict(channels=[" x"]), "unpadded"),
        (one, dict(channels=["x"], times=times[:1], time_column="seconds"), "would not read"),
        (two, dict(channels=["x"], long=False), "several trajectories need long=True"),
    ]
    for y, kwargs, match in cases:
        with pytest.raises(ValueError, match=re.escape(match)):
            systems.save_csv(tmp_path / "out.csv", y, **kwargs)
    assert not (tmp_path / "out.csv").exists()
    path = systems.save_csv(tmp_path / "ok.csv", two, channels=["t"], times=times)
    assert systems.load(path).config["channels"] == ["t"]  # "time" wins, "t" is a channel


# ------------------------------------------------------------------ property-based
FAST = settings(
    max_examples=100,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples every run: a deterministic suite
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _load_checked(path: Path) -> None:
    """`systems.load(path)` gives a consistent `Dataset` or a one-line `ValueError` /
    `FileNotFoundError`, and leaves the file as it was."""
    before = path.read_bytes()
    try:
        ds = systems.load(path)
    except (ValueError, FileNotFoundError) as e:
        assert str(e) and "\n" not in str(e) and "\r" not in str(e), repr(str(e))
    else:
        n, steps, d = ds.y.shape
        assert ds.y.dtype == np.float32 and np.isfinite(ds.y).all()
        assert ds.t.shape == (steps,) and np.isfinite(ds.t).all() and ds.y0.shape == (n, d)
        assert np.all(np.diff(systems.trajectory_times(ds), axis=1) > 0)
        if "channels" in ds.config:
            assert len(ds.config["channels"]) == d and len(ds.config["ids"]) == n
    assert path.read_bytes() == before


@FAST
@given(data=st.binary(max_size=300), suffix=st.sampled_from(systems.FORMATS))
def test_random_bytes(tmp_path, data, suffix):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(data)
    _load_checked(path)


CELLS = ["0", "1", "2.5", "-3e2", "1e39", "nan", "inf", "1_0", "\u0663", "x", "a", "", " 7 "]
CELLS += ['"4"', '"a,b"', '"', "#", "é"]
NAMES = ["x", "v", "time", "t", "step", "trajectory", "X", "", "1", "#c"]


@st.composite
def csv_texts(draw):
    """CSV-like text: a header, rows of cells, mixed line ends, or a soup of pieces."""
    width = draw(st.integers(1, 4))
    header = draw(st.lists(st.sampled_from(NAMES), min_size=width, max_size=width))
    cell = st.sampled_from(CELLS) | st.floats(allow_nan=True).map(repr)
    rows = draw(st.lists(st.lists(cell, min_size=width - 1, max_size=width + 1), max_size=6))
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = end.join(",".join(r) for r in [header, *rows]) + end
    soup = "".join(draw(st.lists(st.sampled_from([*CELLS, ",", "\n", "\r", "\x00"]), max_size=30)))
    return draw(st.sampled_from([text, soup, text + soup]))


@FAST
@given(text=csv_texts())
def test_random_csv_text(tmp_path, text):
    path = tmp_path / "random.csv"
    path.write_bytes(text.encode("utf-8"))
    _load_checked(path)


DTYPES = "<f4 <f8 >f8 <i4 |u1 |b1 <c8 <U3 |S2 |O <f2 |V4 <m8[s] <f16 bogus".split()
DTYPES.append("[('a', '<f4')]")
SHAPES = st.sampled_from([(), (3,), (2, 3), (1, 3, 2), (2, 2, 1, 1), (0, 2)]) | st.lists(
    st.integers(-2, 2**40), max_size=4
).map(tuple)


@FAST
@given(
    descr=st.sampled_from(DTYPES),
    shape=SHAPES,
    fortran=st.booleans(),
    junk=st.binary(),
    size=st.sampled_from(["exact", "short", "junk"]),
    fill=st.sampled_from([0, 0x3F, 0x7F, 0xFF]),
    version=st.sampled_from([(1, 0), (1, 0), (2, 0), (3, 0), (9, 9)]),
    archive=st.sampled_from([None, None, "y", "t", "channels", "metadata", "other"]),
)
def test_random_npy_headers(tmp_path, descr, shape, fortran, junk, size, fill, version, archive):
    """A `.npy` (alone, or as a member of an `.npz` next to a valid `y`) with a random
    header, and data of the declared size (bytes `fill`: zeros, ~1, NaN, -NaN...), one
    byte short, or random."""
    dtype = descr if descr.startswith("[") else repr(descr)
    header = f"{{'descr': {dtype}, 'fortran_order': {fortran}, 'shape': {shape!r}, }}"
    try:
        need = int(np.prod(shape, dtype=object)) * np.dtype(ast.literal_eval(dtype)).itemsize
    except (TypeError, ValueError):
        need = 8
    if size == "junk" or not 0 <= need <= 10_000:
        data = junk
    else:
        data = bytes([fill]) * (need if size == "exact" else need - 1)
    blob = _npy_bytes(header, data, version)
    if archive is None:
        path = tmp_path / "random.npy"
        path.write_bytes(blob)
    else:
        path = tmp_path / "random.npz"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(f"{archive}.npy", blob)
            if archive != "y":
                zf.writestr("y.npy", _array_bytes(np.ones((2, 3), np.float32)))
    _load_checked(path)


finite32 = st.floats(allow_nan=False, allow_infinity=False, width=32)


@st.composite
def trajectories(draw):
    n, steps, d = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 3))
    y = np.array(draw(st.lists(finite32, min_size=n * steps * d, max_size=n * steps * d)))
    start = draw(st.floats(-1e6, 1e6))
    gaps = draw(st.lists(st.floats(1e-3, 1e3), min_size=steps, max_size=steps))
    t = start + np.cumsum(gaps)
    shared = draw(st.booleans())
    times = t if shared else t[None] + np.arange(n)[:, None] * 0.5
    return y.astype(np.float32).reshape(n, steps, d), times


@FAST
@given(arrays=trajectories(), long=st.booleans())
def test_round_trips_through_csv_and_npz(tmp_path, arrays, long):
    y, t = arrays
    ds = systems.from_arrays(y, t, time_column="time", ids=[f"r{i}" for i in range(len(y))])
    times = systems.trajectory_times(ds)
    path = systems.save_csv(
        tmp_path / "rt.csv",
        ds.y,
        channels=ds.config["channels"],
        times=times,
        ids=ds.config["ids"],
        long=long or len(y) > 1,
    )
    back = systems.load(path)
    np.testing.assert_array_equal(back.y, y)  # 9 significant digits: float32 exact
    np.testing.assert_array_equal(systems.trajectory_times(back), times)  # 17 digits
    assert back.config["ids"] == (ds.config["ids"] if long or len(y) > 1 else ["0"])
    saved = systems.load(systems.save(ds, tmp_path / "rt.npz"))
    np.testing.assert_array_equal(saved.y, y)
    np.testing.assert_array_equal(systems.trajectory_times(saved), times)
    assert saved.config == ds.config
