"""Issue 19, training side: bad options are refused up front, a step to non-finite
weights is never saved as good, checkpoint headers are covered by the hash and checked
against the run's config, malformed headers name the field, normaliser statistics are
checked, a torn metrics log keeps its valid records, one training process per run
folder, stale temporaries are removed, and the command line reports every bad path as
one bounded line. Ends with property-based checks of checkpoint headers."""

import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli import one_line_error, run_cli

import warp_phys as wp
from warp_phys import cli
from warp_phys.training._lock import run_lock
from warp_phys.training._state import resume_metadata
from warp_phys.training.checkpoint import MAGIC, checkpoint_digest, load_train_state
from warp_phys.training.metrics_log import MetricsLog, read_metrics
from warp_phys.training.models import build_model

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(system="sine", n_train=16, n_val=8, n_test=6, root_width=4, root_depth=1,
            hyper_width=4, context=4, steps=4, val_every=2, batch_size=8, lr=3e-3)  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hardening") / "run"
    wp.train_run(wp.RunConfig(**TINY), out, progress=False)
    return out


@pytest.fixture
def copy(run, tmp_path):
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def split(raw: bytes) -> tuple[dict, bytes]:
    end = raw.index(b"\n", len(MAGIC))
    return json.loads(raw[len(MAGIC) : end]), raw[end + 1 :]


def signed(header: dict, payload: bytes) -> bytes:
    """A checkpoint with `header` (its SHA-256 made to match, as `save_model` would)."""
    header = dict(header)
    version = header.get("format_version")
    if version in (1, 2):
        header["sha256"] = hashlib.sha256(payload).hexdigest()
    else:
        header["sha256"] = checkpoint_digest(header, payload)
    return MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload


def leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(tree, eqx.is_array))]


# ------------------------------------------------ item 2: options, non-finite steps
NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "name, value",
    [("lr", NAN), ("lr", INF), ("lr", -1e-3), ("transition_lr", NAN), ("clip_value", INF),
     ("weight_decay", NAN), ("weight_decay", -1.0), ("plateau_factor", 1.5),
     ("forcing_prob", 1.5), ("forcing_prob", NAN), ("max_seconds", NAN),
     ("max_seconds", -1.0), ("std_lower_bound", 0.0), ("val_fraction", INF),
     ("lr", 10**400)],
)  # fmt: skip
def test_bad_float_options_are_refused_up_front(name, value):
    with pytest.raises(ValueError, match=f"option {name} must be") as info:
        wp.RunConfig(**{name: value})
    assert "\n" not in str(info.value)


def test_a_nan_learning_rate_is_refused_before_any_file(tmp_path, capsys):
    one_line_error(capsys, "train", "--lr", "nan", "--out", tmp_path / "x", "--quiet",
                   match="option lr must be a finite number, got nan")  # fmt: skip
    assert not (tmp_path / "x").exists()
    model = wp.WARP(1, root_width=2, root_depth=1, hyper_width=2, seq_len=8,
                    key=jax.random.PRNGKey(0))  # fmt: skip
    for name, value in [("max_seconds", NAN), ("log_every", 0)]:
        keywords = {name: value}
        with pytest.raises(ValueError, match=f"option {name} must be"):
            wp.train(model, np.zeros((4, 8, 1)), steps=1, key=jax.random.PRNGKey(0), **keywords)


def test_a_step_to_non_finite_weights_is_not_saved_as_good(tmp_path):
    """Loss and gradient of step 1 are finite, its update is not (a finite learning
    rate near float32's limit times AdaBelief's first step, about 1.1 per entry): the
    last good state is the one before it."""
    t = np.linspace(0, 1, 8)
    data = np.sin(np.arange(1, 5)[:, None] * t)[..., None].astype(np.float32)
    start = wp.WARP(1, root_width=2, root_depth=1, hyper_width=2, seq_len=8,
                    key=jax.random.PRNGKey(0))  # fmt: skip
    optimizer = wp.OptimizerOptions(name="adabelief", lr=3.4e38)
    with pytest.raises(FloatingPointError, match="at step 1; stopped with the model from step 0"):
        wp.train(start, data, steps=3, batch_size=4, optimizer=optimizer, max_non_finite=1,
                 checkpoint_dir=tmp_path, key=jax.random.PRNGKey(0), progress=False)  # fmt: skip
    saved = wp.load_model(tmp_path / "last.eqx")
    for a, b in zip(leaves(start), leaves(saved), strict=True):
        np.testing.assert_array_equal(a, b)  # finite, and the state before the bad step
    smaller = dataclasses.replace(optimizer, lr=1e-3)  # the way on: resume, a smaller rate
    _, history = wp.train(start, data, steps=2, batch_size=4, optimizer=smaller,
                          checkpoint_dir=tmp_path, resume=True, key=jax.random.PRNGKey(0),
                          progress=False)  # fmt: skip
    assert history["step"] == [1, 2] and np.all(np.isfinite(history["loss"]))


def test_the_learning_rate_may_change_on_resume(copy, capsys):
    code, out, _ = run_cli(capsys, "train", "--out", copy, "--resume", "--steps", 6,
                           "--lr", "0.01", "--quiet")  # fmt: skip
    assert code == 0 and "step 6" in out, out
    assert json.loads((copy / "config.json").read_text())["lr"] == 0.01  # the latest rate


def test_resuming_a_finished_run_is_a_one_line_error(copy, capsys):
    one_line_error(capsys, "train", "--out", copy, "--resume", "--quiet",
                   match="already finished at step 4 (steps 4); raise steps (--steps)")  # fmt: skip


# ------------------------------------------------------ item 3: header and config
def test_the_hash_covers_the_header(copy):
    raw = (copy / "best.eqx").read_bytes()
    assert split(raw)[0]["format_version"] == 3
    assert b'"seq_len": 16' in raw
    (copy / "best.eqx").write_bytes(raw.replace(b'"seq_len": 16', b'"seq_len": 12'))
    with pytest.raises(ValueError, match="corrupt"):
        wp.load_model(copy / "best.eqx")
    with pytest.raises(ValueError, match="corrupt"):
        wp.load_run(copy)


def test_load_run_checks_the_checkpoint_against_config_json(copy):
    run = wp.load_run(copy)
    wider = build_model(run.config.replace(root_width=5), 1, 16, key=jax.random.PRNGKey(0),
                        normalizer=run.normalizer)  # fmt: skip
    wp.save_model(copy / "best.eqx", wider)
    expected = r"best.eqx does not hold .* root_width 5 \(config.json: 4\)"
    with pytest.raises(ValueError, match=expected):
        wp.load_run(copy)
    wp.save_model(copy / "best.eqx", run.model)
    stats = json.loads((copy / "normalizer.json").read_text())
    stats["std"] = [2 * s for s in stats["std"]]
    (copy / "normalizer.json").write_text(json.dumps(stats))
    with pytest.raises(ValueError, match="does not hold .* data_scale"):
        wp.load_run(copy)


# ------------------------------------------------- item 5: malformed headers, paths
@pytest.mark.parametrize(
    "edit, field",
    [(lambda h: h.pop("payload_size"), "payload_size"),
     (lambda h: h.update(payload_size=-1), "payload_size"),
     (lambda h: h.update(model_size="12"), "model_size"),
     (lambda h: h.update(model_size=10**9), "model_size"),
     (lambda h: h.update(has_train_state="yes"), "has_train_state"),
     (lambda h: h.update(config=[1]), "config"),
     (lambda h: h.update(metadata=None), "metadata"),
     (lambda h: h.update(model_class=3), "model_class"),
     (lambda h: h.update(sha256="00"), "sha256")],
)  # fmt: skip
def test_a_malformed_header_field_is_named(copy, edit, field):
    header, payload = split((copy / "last.eqx").read_bytes())
    edit(header)
    blob = signed(header, payload) if field != "sha256" else None  # signing sets sha256
    blob = blob or MAGIC + json.dumps(header).encode() + b"\n" + payload
    (copy / "last.eqx").write_bytes(blob)
    with pytest.raises(ValueError, match=f"header field '{field}'") as info:
        wp.load_model(copy / "last.eqx")
    assert "\n" not in str(info.value)


def test_malformed_resume_metadata_is_named(copy):
    header, payload = split((copy / "last.eqx").read_bytes())
    header["metadata"]["step"] = "3"
    (copy / "last.eqx").write_bytes(signed(header, payload))
    with pytest.raises(ValueError, match="metadata field 'step' must be a non-negative integer"):
        resume_metadata(copy / "last.eqx", steps=10)


def test_paths_that_cannot_be_written_are_one_line_errors(run, tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    one_line_error(capsys, "train", "--system", "sine", "--out", tmp_path / "file", "--quiet",
                   match="is a file, not a run folder")  # fmt: skip
    (tmp_path / "folder").mkdir()
    one_line_error(capsys, "evaluate", "--run", run, "--json", tmp_path / "folder",
                   match="Is a directory")  # fmt: skip

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "locked"))

    monkeypatch.setattr(cli, "train_run", refuse)
    one_line_error(capsys, "train", "--out", tmp_path / "locked", match="Permission denied")


def test_error_lines_are_bounded(tmp_path, capsys, monkeypatch):
    def verbose(*args, **kwargs):
        raise ValueError("word " * 2000)

    monkeypatch.setattr(cli, "train_run", verbose)
    err = one_line_error(capsys, "train", "--out", tmp_path / "x", match="word word")
    assert len(err) <= len("warp-phys: error: ") + cli.MAX_MESSAGE and err.endswith("...")
    for name in ["nope" * 2000 + ":x", "nope" * 2000]:
        with pytest.raises(ValueError) as info:
            wp.get_decoder(name, data_size=1)
        assert len(str(info.value)) < 600 and "\n" not in str(info.value)

    def failing(params, tau, x_prev):
        raise ValueError("a\nlong\nreason " * 1000)

    with pytest.raises(ValueError, match="failed when called") as info:
        wp.decoder_from_function(failing, {"a": ()}, data_size=1)
    assert len(str(info.value)) < 400 and "\n" not in str(info.value)


# ------------------------------------------- item 6: normaliser, metrics, lock, tmp
def test_normaliser_statistics_are_checked():
    for stats, message in [({"mean": [0.0, NAN], "std": [1.0, 1.0]}, "mean of channel 1 is nan"),
                           ({"mean": [0.0], "std": [INF]}, "std of channel 0 is inf"),
                           ({"mean": [0.0], "std": [0.0]}, "std of channel 0 is 0"),
                           ({"mean": [0.0, 1.0], "std": [1.0]}, "equal length"),
                           ({"mean": ["a"], "std": [1.0]}, "lists of numbers"),
                           ([1, 2], "needs 'mean' and 'std'")]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            wp.Normalizer.from_dict(stats)
    y = np.ones((4, 8, 2), np.float32)
    y[1, 3, 0] = 1e30  # a float32 sum of squares overflows
    fitted = wp.Normalizer.fit(y)
    expected = np.std(y.astype(np.float64), axis=(0, 1)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(fitted.std), [expected[0], 1.0], rtol=1e-6)
    with pytest.raises(ValueError, match="std of channel 1 is .*finite and > 0 in float32"):
        wp.Normalizer.fit(np.stack([np.zeros((2, 3)), np.array([[1e300, -1e300, 0]] * 2)], -1))


def test_load_run_refuses_a_nan_normaliser(copy):
    stats = json.loads((copy / "normalizer.json").read_text())
    (copy / "normalizer.json").write_text(json.dumps(dict(stats, mean=[NAN])))
    with pytest.raises(ValueError, match="normalizer.json: the mean of channel 0 is nan"):
        wp.load_run(copy)


def test_a_garbage_line_in_metrics_keeps_the_records_after_it(tmp_path):
    lines = ['{"step": 1, "loss": 1.0}', "garbage", "[1, 2]", '{"step": 2, "loss": 0.5}',
             '{"step": 3, "val_mse": 0.4}', '{"step": 4, "loss": 0.3}']  # fmt: skip
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 5, "lo')  # torn
    with pytest.warns(UserWarning, match="skipped 2 unreadable line"):
        assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4]
    with pytest.warns(UserWarning, match=r"skipped 2 unreadable line\(s\) \(first: line 2\)"):
        MetricsLog(tmp_path, resume_from=3)
    assert (tmp_path / "metrics.jsonl").read_text().splitlines() == [lines[0], *lines[3:5]]


HOLDER = """
import sys, time
from warp_phys.training._lock import run_lock
with run_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_a_second_training_process_is_refused(copy, capsys):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(copy)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        one_line_error(capsys, "train", "--out", copy, "--resume", "--steps", 6, "--quiet",
                       match=f"in use by another training process (PID {holder.pid})")  # fmt: skip
        with pytest.raises(BlockingIOError):
            wp.train_run(wp.RunConfig(**TINY), copy, overwrite=True, progress=False)
    finally:
        holder.kill()
        holder.wait()
    with run_lock(copy):  # the lock dies with its process
        pass
    assert (copy / "config.json").is_file()  # the refused runs wrote nothing


def test_stale_temporaries_are_removed_when_training_opens_a_folder(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    stale = [folder / ".last.eqx.k2j4h1x0.tmp", folder / ".metrics.jsonl.a8.tmp"]
    kept = [folder / ".eval_test.json.a8.tmp", folder / "notes.tmp", folder / "last.eqx.tmp"]
    for path in stale + kept:
        path.write_bytes(b"partial")
    with run_lock(folder):
        assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)
    empty = tmp_path / "new"
    with pytest.raises(RuntimeError), run_lock(empty):  # a failure before any file
        raise RuntimeError
    assert not empty.exists()


# ------------------------------------------------- property-based: checkpoint headers
STATE = {"moments": jnp.arange(3.0)}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    model = wp.WARP(2, root_width=2, root_depth=1, hyper_width=2, seq_len=8,
                    key=jax.random.PRNGKey(1))  # fmt: skip
    path = tmp_path_factory.mktemp("ckpt") / "model.eqx"
    metadata = dict(step=3, best_val=0.5, best_step=2, bad_validations=1, stopped=None,
                    train_options={"lr": 0.1})  # fmt: skip
    wp.save_model(path, model, metadata=metadata, train_state=STATE)
    return model, path.read_bytes(), path.parent


def _load(folder: Path, raw: bytes):
    """`(model, state)` of the checkpoint `raw`, or None for a clean one-line error."""
    path = folder / "probe.eqx"
    path.write_bytes(raw)
    try:
        return wp.load_model(path), load_train_state(path, STATE)[1]
    except (ValueError, FileNotFoundError) as err:
        message = str(err)
        assert message and "\n" not in message and len(message) < 1000, message
        return None


def _same(loaded, model) -> bool:
    got, state = loaded
    expected = leaves(model) + leaves(STATE)
    return all(np.array_equal(a, b) for a, b in zip(leaves(got) + leaves(state), expected,
                                                    strict=True))  # fmt: skip


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 40) | st.floats(allow_nan=True, width=32)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip
HEADER_KEYS = ["format_version", "model_class", "config", "model_size", "has_train_state",
               "payload_size", "metadata", "sha256"]  # fmt: skip
CONFIG_KEYS = ["data_size", "decoder", "decoder_options", "root_width", "root_depth",
               "hyper_width", "hyper_depth", "seq_len", "transition", "time_step"]  # fmt: skip
METADATA_KEYS = ["step", "best_val", "best_step", "bad_validations", "stopped",
                 "train_options"]  # fmt: skip


@st.composite
def header_edits(draw, header: dict) -> dict:
    header = json.loads(json.dumps(header))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["top", "config", "metadata"]))
        target = header if where == "top" else header.get(where)
        if not isinstance(target, dict):
            continue
        keys = {"top": HEADER_KEYS, "config": CONFIG_KEYS, "metadata": METADATA_KEYS}[where]
        key = draw(st.sampled_from(keys))
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(json_values)
    return header


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=st.data())
def test_corrupted_checkpoints_load_the_original_or_fail_cleanly(checkpoint, data):
    """Flipped, inserted or cut bytes and unsigned header edits: the original model
    exactly, or a one-line ValueError; never another exception or another model."""
    model, raw, folder = checkpoint
    kind = data.draw(st.sampled_from(["flip", "insert", "cut", "header"]))
    if kind == "flip":
        broken = bytearray(raw)
        for at in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=4)):
            broken[at] ^= data.draw(st.integers(1, 255))
        broken = bytes(broken)
    elif kind == "insert":
        at = data.draw(st.integers(0, len(raw)))
        broken = raw[:at] + data.draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    elif kind == "cut":
        broken = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        header, payload = split(raw)
        edited = data.draw(header_edits(header))
        broken = MAGIC + json.dumps(edited).encode() + b"\n" + payload
    loaded = _load(folder, broken)
    assert loaded is None or _same(loaded, model)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=st.data())
def test_signed_header_edits_fail_cleanly_or_load_the_stored_weights(checkpoint, data):
    """Header edits with a matching hash (what a buggy writer could produce): every
    malformed field is a one-line ValueError; what loads has exactly the stored
    weights, and resume metadata is checked field by field."""
    model, raw, folder = checkpoint
    header, payload = split(raw)
    loaded = _load(folder, signed(data.draw(header_edits(header)), payload))
    assert loaded is None or _same(loaded, model)
    if loaded is not None:
        try:
            meta = resume_metadata(folder / "probe.eqx", steps=10**6)
        except ValueError as err:
            assert "\n" not in str(err)
        else:
            assert type(meta["step"]) is int and meta["step"] >= 0
            assert isinstance(meta["train_options"], dict)
