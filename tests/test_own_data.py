"""Your own data: file formats round trip, specific validation errors, training from a
file equals training from the same arrays, normalisation undone, the CLI with CSV."""

import json
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import systems
from warp_phys import cli
from warp_phys.training.config import RunConfig
from warp_phys.training.data import Normalizer
from warp_phys.training.evaluation import _reconstruct, read_input, reconstruct_run
from warp_phys.training.run import load_dataset, load_run, train_run

N, T, CONTEXT = 10, 20, 6
HORIZON = T - CONTEXT + 3  # past the end of the data: one compiled reconstruction for all
TINY = dict(root_width=4, root_depth=1, hyper_width=4, context=CONTEXT, steps=4, val_every=4,
            batch_size=4, seed=3)  # fmt: skip
TINY_FLAGS = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]


def oscillations(n=N, steps=T, seed=0):
    """`(n, steps, 2)` float32 damped oscillations with offsets and scales far from 0/1,
    and the times `(steps,)` (0.05 s steps)."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps) * 0.05
    w, g = rng.uniform(4, 8, (n, 1)), rng.uniform(0.1, 0.5, (n, 1))
    pos = 3.0 + 2.0 * np.exp(-g * t) * np.cos(w * t)
    vel = -40.0 * np.exp(-g * t) * np.sin(w * t)
    return np.stack([pos, vel], -1).astype(np.float32), t


@pytest.fixture(scope="session")
def files(tmp_path_factory):
    """The same trajectories as a long CSV, .npz and .npy."""
    folder = tmp_path_factory.mktemp("own")
    y, t = oscillations()
    ids = [f"rec{i}" for i in range(N)]
    times = np.broadcast_to(t, (N, T))
    systems.save_csv(folder / "long.csv", y, channels=["x", "v"], times=times, ids=ids)
    np.savez(folder / "data.npz", y=y, t=t)
    np.save(folder / "data.npy", y)
    return folder, y, t


@pytest.fixture(scope="session")
def runs(files, tmp_path_factory):
    """Tiny runs: `warp-phys train --data long.csv`, and `train_run` on the same arrays
    in memory."""
    folder, y, _ = files
    out = tmp_path_factory.mktemp("runs")
    argv = ["train", "--data", str(folder / "long.csv"), *TINY_FLAGS, "--out", str(out / "file")]
    assert cli.main([*argv, "--quiet"]) == 0
    in_memory, _ = train_run(RunConfig(**TINY), out / "memory", data=y, progress=False)
    return load_run(out / "file"), in_memory


# ------------------------------------------------------------------- round trips
def test_long_csv_round_trip(files, tmp_path):
    folder, y, t = files
    ds = systems.load(folder / "long.csv")
    np.testing.assert_array_equal(ds.y, y)  # 9 significant digits: float32 exact
    np.testing.assert_array_equal(ds.t, t)  # times written with 17 digits
    assert ds.config["ids"] == [f"rec{i}" for i in range(N)] and ds.config["channels"] == ["x", "v"]
    assert ds.config["format"] == "csv-long" and ds.config["time_column"] == "time"
    shuffled = (folder / "long.csv").read_text().splitlines()
    rows = shuffled[1:]
    interleaved = [rows[i + k * T] for i in range(T) for k in range(N)]  # rows of ids mixed
    (tmp_path / "mixed.csv").write_text("\n".join([shuffled[0], *interleaved]) + "\n")
    np.testing.assert_array_equal(systems.load(tmp_path / "mixed.csv").y, y)


def test_single_and_headerless_csv_and_folder(files, tmp_path):
    _, y, t = files
    for i in range(3):
        systems.save_csv(tmp_path / "runs" / f"r{i}.csv", y[i : i + 1], channels=["x", "v"],
                         times=t[None], long=False)  # fmt: skip
    one = systems.load(tmp_path / "runs" / "r1.csv")
    assert one.y.shape == (1, T, 2) and one.config["format"] == "csv"
    np.testing.assert_array_equal(one.y[0], y[1])
    folder = systems.load(tmp_path / "runs")
    np.testing.assert_array_equal(folder.y, y[:3])
    assert folder.config["ids"] == ["r0", "r1", "r2"] and folder.config["format"] == "csv-folder"
    np.savetxt(tmp_path / "bare.csv", y[0], delimiter=",")
    bare = systems.load(tmp_path / "bare.csv")
    assert bare.config["channels"] == ["x0", "x1"] and bare.config["time_column"] is None
    np.testing.assert_allclose(bare.y[0], y[0], rtol=1e-6)
    np.testing.assert_array_equal(bare.t, np.arange(T))


def test_npz_npy_and_converted_round_trips(files, tmp_path, capsys):
    folder, y, t = files
    from_npz, from_npy = systems.load(folder / "data.npz"), systems.load(folder / "data.npy")
    np.testing.assert_array_equal(from_npz.y, y)
    np.testing.assert_array_equal(from_npz.t, t)
    np.testing.assert_array_equal(from_npy.y, y)
    per_trajectory = t[None] + np.arange(N)[:, None]  # (N, T) times, one grid each
    np.savez(tmp_path / "nt.npz", y=y, t=per_trajectory, channels=np.array(["a", "b"]))
    nt = systems.load(tmp_path / "nt.npz")
    np.testing.assert_array_equal(systems.trajectory_times(nt), per_trajectory)
    assert nt.config["channels"] == ["a", "b"]
    code = cli.main(["data", "--from", str(folder / "long.csv"), "--out", str(tmp_path / "c.npz")])
    assert code == 0 and "10 trajectories x 20 steps x 2 channels (x, v)" in capsys.readouterr().out
    back, original = systems.load(tmp_path / "c.npz"), systems.load(folder / "long.csv")
    np.testing.assert_array_equal(back.y, original.y)
    np.testing.assert_array_equal(back.t, original.t)
    assert back.config == original.config  # ids, channels and time column survive


# ------------------------------------------------------------------ validation
def _write(path, content):
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


BAD_FILES = {
    "ragged.csv": ("trajectory,time,x\na,0,1\na,1,2\nb,0,1\n", "ragged trajectories: 'b' has 1"),
    "nan.csv": ("trajectory,time,x,v\na,0,1,1\nb,0,1,1\nb,0.5,nan,2\na,0.5,1,1\n",
                "trajectory 'b' (index 1) at time step 1 (time 0.5), channel 'x'"),
    "inf.npz": (None, "trajectory '2' (index 2) at time step 7 (time 7), channel 'x1'"),
    "backwards.csv": ("time,x\n0,1\n0.2,2\n0.1,3\n",
                      "not strictly increasing at step 2 (0.1 after 0.2)"),
    "repeated.csv": ("time,x\n0,1\n0,2\n", "not strictly increasing at step 1"),
    "empty.csv": ("", "is empty"),
    "header.csv": ("trajectory,time,x\n", "has a header but no data rows"),
    "text.csv": ("time,x\n0,1\n1,abc\n", "line 3, column 'x': 'abc' is not a number"),
    "short.csv": ("time,x,v\n0,1,2\n1,3\n", "line 3: 2 fields, the header has 3"),
    "zip.csv": (b"PK\x03\x04" + bytes(40), "not a valid systems data set or .csv file: its "
                "content is a zip (.npz) archive"),  # fmt: skip
    "text.npz": ("x\n1\n2\n", "its content is text (a CSV?)"),
    "npz.npy": (None, "its content is a zip (.npz) archive"),
    "binary.npy": (bytes(range(256)), "its content is binary data of an unknown format"),
    "noarrays.npz": (None, "holds no arrays"),
    "strings.npy": (None, "must be numeric"),
    "data.txt": ("1,2\n", "unknown format '.txt'"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_give_specific_errors(name, tmp_path):
    content, match = BAD_FILES[name]
    path = tmp_path / name
    if name == "inf.npz":
        y = np.zeros((3, 9, 2))
        y[2, 7, 1] = np.inf
        np.savez(path, y=y)
    elif name == "npz.npy":
        np.savez(tmp_path / "a.npz", y=np.zeros((1, 3, 1)))
        (tmp_path / "a.npz").rename(path)
    elif name == "noarrays.npz":
        np.savez(path)
    elif name == "strings.npy":
        np.save(path, np.array([["a", "b"]]))
    else:
        _write(path, content)
    with pytest.raises(ValueError, match=re.escape(match)):
        systems.load(path)


def test_missing_file_and_ragged_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no data file"):
        systems.load(tmp_path / "nope.csv")
    _write(tmp_path / "a.csv", "x\n1\n2\n3\n")
    _write(tmp_path / "b.csv", "x\n1\n2\n")
    with pytest.raises(ValueError, match="ragged trajectories: b.csv has 2 steps, a.csv has 3"):
        systems.load(tmp_path)


def test_run_checks_channels_and_context(runs, files, tmp_path):
    run, _ = runs
    folder, y, t = files
    three = _write(tmp_path / "three.csv", "time,x,v,w\n0,1,2,3\n1,1,2,3\n")
    with pytest.raises(ValueError, match=r"3 channel\(s\) \(x, v, w\), the run expects 2 \(x, v\)"):
        read_input(run, three)
    renamed = _write(tmp_path / "renamed.csv", "time,x,speed\n0,1,2\n1,1,2\n")
    with pytest.raises(ValueError, match="channels x, speed, the run was trained on x, v"):
        read_input(run, renamed)
    swapped = tmp_path / "swapped.csv"
    systems.save_csv(swapped, y[:2, :, ::-1], channels=["v", "x"], times=np.stack([t, t]))
    np.testing.assert_array_equal(read_input(run, swapped)[1], y[:2])  # matched by name
    with pytest.raises(ValueError, match="too few steps for the context: the trajectories have "
                       f"{CONTEXT - 1} steps, fewer than the context {CONTEXT}"):  # fmt: skip
        reconstruct_run(run, y[:, : CONTEXT - 1], context=CONTEXT)
    with pytest.raises(ValueError, match=f"context {CONTEXT} needs at least {CONTEXT + 1}"):
        train_run(RunConfig(**TINY), tmp_path / "short", data=y[:, :CONTEXT], progress=False)
    with pytest.raises(ValueError, match=r"validation data has 1 channel\(s\)"):
        train_run(RunConfig(**TINY), tmp_path / "v", data=y, val_data=y[..., :1], progress=False)
    with pytest.raises(ValueError, match="1 trajectory cannot be split"):
        train_run(RunConfig(**TINY), tmp_path / "one", data=y[:1], progress=False)
    with pytest.raises(ValueError, match="either a system .* or a data file"):
        RunConfig(system="msd", data="x.csv")
    with pytest.raises(ValueError, match="has no 'test' split"):
        load_dataset(run.config, "test")


# --------------------------------------------------- training and normalisation
def test_training_from_a_file_equals_training_from_arrays(runs, files):
    from_file, in_memory = runs
    same = jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)),
                        eqx.filter(from_file.model, eqx.is_array),
                        eqx.filter(in_memory.model, eqx.is_array))  # fmt: skip
    assert all(jax.tree.leaves(same))
    assert from_file.normalizer.to_dict() == in_memory.normalizer.to_dict()
    # the statistics come from the training part only, carved out with the data seed
    _, y, _ = files
    train, val = load_dataset(from_file.config, "train"), load_dataset(from_file.config, "val")
    assert (len(train), len(val)) == (8, 2) and not set(train.config["ids"]) & set(
        val.config["ids"])  # fmt: skip
    stats = from_file.normalizer.to_dict()
    assert stats == Normalizer.fit(train.y).to_dict() != Normalizer.fit(y).to_dict()
    record = json.loads((from_file.folder / "data.json").read_text())
    assert record["val_ids"] == val.config["ids"] and record["channels"] == ["x", "v"]
    assert load_run(from_file.folder).channels == ["x", "v"]


def test_normalisation_is_applied_and_undone(runs, files):
    run, _ = runs
    _, y, _ = files
    result = reconstruct_run(run, y, context=CONTEXT, horizon=HORIZON)
    norm = run.normalizer
    # the compiled function reconstruct_run calls, so the comparison can be exact
    normalised = _reconstruct(run.model, norm.apply(jnp.asarray(y[:, :CONTEXT])), HORIZON,
                              mode=run.config.mode, convention=run.config.convention)  # fmt: skip
    raw = np.asarray(normalised) * np.asarray(norm.std) + np.asarray(norm.mean)
    np.testing.assert_array_equal(result["prediction"], raw)  # mapped back with the run's stats
    np.testing.assert_allclose(norm.invert(norm.apply(y)), y, rtol=1e-6, atol=1e-5)
    # raw units: the x channel sits near the data's offset of 3, not near 0
    assert abs(float(np.mean(result["prediction"][..., 0])) - float(np.mean(y[..., 0]))) < 1.0


# ------------------------------------------------------------------------ CLI
def test_cli_round_trip_with_csv(runs, files, tmp_path, capsys):
    folder, y, t = files
    source = folder / "long.csv"
    before = source.read_bytes()
    out = runs[0].folder  # trained by `warp-phys train --data long.csv`
    assert json.loads((out / "config.json").read_text())["data"] == str(source.resolve())
    code = cli.main(["reconstruct", "--run", str(out), "--input", str(source),
                     "--context", str(CONTEXT), "--horizon", str(HORIZON)])  # fmt: skip
    assert code == 0 and "MSE" in capsys.readouterr().out
    written = systems.load(out / "reconstruction.csv")
    assert written.config["ids"] == [f"rec{i}" for i in range(N)]
    assert written.config["channels"] == ["x", "v"] and written.config["time_column"] == "time"
    # the time column is carried over, and continues with the input's step past its end
    expected_t = np.concatenate([t[CONTEXT:], t[-1] + 0.05 * np.arange(1, 4)])
    np.testing.assert_allclose(written.t, expected_t, rtol=1e-12)
    expected = reconstruct_run(runs[0], y, context=CONTEXT, horizon=HORIZON)["prediction"]
    np.testing.assert_array_equal(written.y, expected)
    code = cli.main(["reconstruct", "--run", str(out), "--input", str(source),
                     "--context", str(CONTEXT), "--out", str(source)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "refusing to overwrite the input" in err and "\n" not in err.strip()
    assert source.read_bytes() == before
    np.save(tmp_path / "in.npy", y)
    assert cli.main(["reconstruct", "--run", str(out), "--input", str(tmp_path / "in.npy"),
                     "--context", str(CONTEXT), "--horizon", str(HORIZON),
                     "--out", str(tmp_path / "p.npy")]) == 0  # fmt: skip
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), expected)
    code = cli.main(["train", "--data", str(source), "--system", "msd",
                     "--out", str(tmp_path / "x")])  # fmt: skip
    assert code == 2 and "either a system" in capsys.readouterr().err
