"""Data-parallel training (`train(..., devices=N)`): the same result as one device, clear
errors, and the option from config and command line.

Two devices are forced on the CPU host with `XLA_FLAGS`, which must be set before jax
is imported, so those checks run in one subprocess; the rest runs in-process."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import warp_phys as wp
from warp_phys import cli
from warp_phys._train_flags import config_from_args
from warp_phys.training._devices import resolve_devices
from warp_phys.training.config import RunConfig
from warp_phys.training.run import _check_resumable, train_run

RTOL, ATOL = 1e-5, 1e-6  # float32; the batch mean is summed in another order

TWO_DEVICES = textwrap.dedent(
    """
    import json, tempfile
    import equinox as eqx, jax, numpy as np
    import warp_phys as wp
    from warp_phys.training._devices import batch_mesh, resolve_devices, shard_batch

    y = np.cumsum(np.random.default_rng(0).normal(size=(12, 16, 2)), axis=1) * 0.1
    y = y.astype(np.float32)

    def fit(devices, steps=5, batch_size=4, **options):
        model = wp.WARP(2, root_width=8, root_depth=2, decoder_options={"final_activation": 5.0},
                        key=jax.random.PRNGKey(0))
        return wp.train(model, y, steps=steps, batch_size=batch_size, val_data=y[:4],
                        validation=wp.ValidationOptions(every=2), key=jax.random.PRNGKey(1),
                        progress=False, devices=devices, **options)

    def leaves(model):
        return [np.asarray(x).tolist() for x in jax.tree.leaves(eqx.filter(model, eqx.is_array))]

    out = {"local_devices": len(jax.local_devices()), "auto": resolve_devices("auto", 4)}
    shards = shard_batch(batch_mesh(2), np.zeros((4, 16, 2), np.float32)).addressable_shards
    out["shard_shapes"] = [list(s.data.shape) for s in shards]
    for n in (1, 2):
        model, history = fit(n)
        out[n] = {"params": leaves(model), "loss": history["loss"], "val": history["val_mse"],
                  "devices_of_result": len(jax.tree.leaves(model)[0].devices())}
    with tempfile.TemporaryDirectory() as folder:  # 3 steps on one device, 2 more on two
        fit(1, steps=3, checkpoint_dir=folder)
        model, history = fit(2, checkpoint_dir=folder, resume=True)
        out["resumed"] = {"params": leaves(model), "loss": history["loss"]}
    try:
        fit(2, batch_size=3)
    except ValueError as err:
        out["indivisible"] = str(err)
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def two_devices() -> dict:
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2"
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=flags.strip())  # and conftest's
    done = subprocess.run(
        [sys.executable, "-c", TWO_DEVICES], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _assert_same_params(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=RTOL, atol=ATOL)


def test_two_devices_train_like_one(two_devices):
    assert two_devices["local_devices"] == 2 and two_devices["auto"] == 2
    assert two_devices["shard_shapes"] == [[2, 16, 2], [2, 16, 2]]  # the batch is split
    one, two = two_devices["1"], two_devices["2"]
    _assert_same_params(one["params"], two["params"])
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(two["val"], one["val"], rtol=RTOL, atol=ATOL)  # validation
    assert len(one["loss"]) == 5 and len(one["val"]) == 2
    assert two["devices_of_result"] == 1  # the trained model comes back on one device


def test_resume_on_another_device_count(two_devices):
    resumed, one = two_devices["resumed"], two_devices["1"]
    _assert_same_params(one["params"], resumed["params"])
    np.testing.assert_allclose(resumed["loss"], one["loss"][3:], rtol=RTOL, atol=ATOL)


def test_batch_must_divide(two_devices):
    message = two_devices["indivisible"]
    assert "batch_size 3 is not divisible by the 2 devices" in message
    assert "multiple of 2" in message


def test_too_many_devices_names_the_count_and_the_cpu_flag():
    n = len(jax.local_devices())
    with pytest.raises(ValueError, match=rf"only {n} local") as err:
        resolve_devices(n + 1, 64)
    assert "XLA_FLAGS=--xla_force_host_platform_device_count" in str(err.value)
    y = np.zeros((8, 6, 2), np.float32)
    model = wp.WARP(2, root_width=4, root_depth=1, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=rf"devices={n + 1} asked for"):
        wp.train(model, y, steps=1, batch_size=4, devices=n + 1, key=jax.random.PRNGKey(0))
    for bad in (0, -1, 1.5, "all", True):
        with pytest.raises(ValueError, match="positive integer or 'auto'"):
            resolve_devices(bad, 4)
    assert resolve_devices(1, 3) == 1 and resolve_devices("auto", n) == n


def test_a_run_folder_is_not_started_with_devices_it_cannot_use(tmp_path):
    n = len(jax.local_devices())
    y = np.cumsum(np.ones((10, 8, 2), np.float32), axis=1)
    with pytest.raises(ValueError, match=rf"devices={n + 1} asked for"):
        train_run(RunConfig(devices=n + 1, batch_size=4, context=2), tmp_path / "run", data=y)
    assert not (tmp_path / "run").exists()


def test_config_and_command_line():
    assert RunConfig().devices == 1
    assert RunConfig(devices="auto").devices == "auto" and RunConfig(devices=2).devices == 2
    with pytest.raises(ValueError, match="devices must be >= 1"):
        RunConfig(devices=0)
    with pytest.raises(ValueError, match="devices must be of type int or 'auto'"):
        RunConfig(devices="all")
    parser = cli.build_parser()
    for flag, value in (("auto", "auto"), ("2", 2)):
        args = parser.parse_args(["train", "--out", "x", "--devices", flag])
        assert config_from_args(args).devices == value
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--out", "x", "--devices", "many"])
    stored = RunConfig(devices=1)  # resuming on another device count is allowed
    _check_resumable(stored, stored.replace(devices="auto"), "run")
