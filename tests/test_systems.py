"""Tests of the `systems` package: solver accuracy against scipy, physics, splits, errors, files.

Data sets are tiny (N = 32, padded to one compiled shape of 64) and shared per module, so
each system's solve compiles once.
"""

import json

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import systems

N = 32
SEED = 3

# Independent NumPy right-hand sides (written from the equations, not from the package).
REFERENCE_FIELDS = {
    "msd": lambda t, y, p: [y[1], -(p["c"] * y[1] + p["k"] * y[0]) / p["m"]],
    "lotka_volterra": lambda t, y, p: [
        p["alpha"] * y[0] - p["beta"] * y[0] * y[1],
        p["delta"] * y[0] * y[1] - p["gamma"] * y[1],
    ],
    "sine": lambda t, y, p: [2 * np.pi * np.cos(2 * np.pi * t + p["phi"])],
    "lorenz63": lambda t, y, p: [
        p["sigma"] * (y[1] - y[0]), y[0] * (p["rho"] - y[2]) - y[1], y[0] * y[1] - p["beta"] * y[2]
    ],
    "pendulum": lambda t, y, p: [y[1], -(p["g"] / p["L"]) * np.sin(y[0]) - p["damping"] * y[1]],
}
REFERENCE_FIELDS["msd_zero"] = REFERENCE_FIELDS["msd"]
PLAIN_SYSTEMS = sorted(REFERENCE_FIELDS)

_CACHE: dict[tuple, systems.Dataset] = {}


def data(name, split="train", **overrides):
    """A memoised tiny data set, so that tests share generations."""
    key = (name, split, repr(sorted(overrides.items())))
    if key not in _CACHE:
        _CACHE[key] = systems.generate(name, N, split=split, seed=SEED, **overrides)
    return _CACHE[key]


# ----------------------------------------------------------------------------- accuracy
@pytest.mark.parametrize("name", PLAIN_SYSTEMS)
def test_agrees_with_scipy(name):
    """Max error <= 2e-5 * (1 + max |y_ref|) against RK45 at rtol = atol = 1e-10."""
    ds = data(name)
    assert ds.y.dtype == np.float32 and ds.y.shape == (N, len(ds.t), ds.y0.shape[1])
    np.testing.assert_allclose(ds.t, np.linspace(0, ds.t[-1], len(ds.t)), rtol=1e-6)
    for i in (0, 7, 19):
        p = {k: float(v[i]) for k, v in ds.params.items()}
        ref = solve_ivp(
            lambda t, y, p=p: REFERENCE_FIELDS[name](t, y, p), (0.0, float(ds.t[-1])),
            ds.y0[i].astype(np.float64), t_eval=ds.t.astype(np.float64), rtol=1e-10, atol=1e-10,
        ).y.T
        err = np.abs(ds.y[i] - ref).max()
        assert err <= 2e-5 * (1 + np.abs(ref).max()), (name, i, err)


# ------------------------------------------------------------------------------ physics
def test_lotka_volterra_first_integral_conserved():
    ds = data("lotka_volterra")
    p = {k: v[:, None].astype(np.float64) for k, v in ds.params.items()}
    x, y = ds.y[..., 0].astype(np.float64), ds.y[..., 1].astype(np.float64)
    assert x.min() > 0 and y.min() > 0
    v = p["delta"] * x - p["gamma"] * np.log(x) + p["beta"] * y - p["alpha"] * np.log(y)
    drift = np.abs(v - v[:, :1]).max(axis=1) / np.abs(v[:, 0])
    assert drift.max() < 1e-5, drift.max()
    assert np.ptp(x, axis=1).min() > 0.1  # the orbits do move


def test_msd_energy_never_increases():
    ds = data("msd_zero")
    m, k = ds.params["m"][:, None], ds.params["k"][:, None]
    x, v = ds.y[..., 0].astype(np.float64), ds.y[..., 1].astype(np.float64)
    energy = 0.5 * m * v**2 + 0.5 * k * x**2
    assert np.all(np.diff(energy, axis=1) <= 1e-6 * energy[:, :1])
    assert np.all(energy[:, -1] < 0.99 * energy[:, 0])  # c >= 0.01 really dissipates


def test_undamped_msd_has_period_2pi_sqrt_m_over_k():
    ds = data("msd", c=0.0)
    assert np.all(ds.params["c"] == 0)
    m, k = ds.params["m"].astype(np.float64), ds.params["k"].astype(np.float64)
    x, v = ds.y[..., 0].astype(np.float64), ds.y[..., 1].astype(np.float64)
    energy = 0.5 * m[:, None] * v**2 + 0.5 * k[:, None] * x**2
    assert np.abs(energy / energy[:, :1] - 1).max() < 1e-5
    t = ds.t.astype(np.float64)
    for i in range(N):  # zero crossings of x are half a period apart
        j = np.nonzero(np.sign(x[i, :-1]) != np.sign(x[i, 1:]))[0]
        crossings = t[j] - x[i, j] * (t[j + 1] - t[j]) / (x[i, j + 1] - x[i, j])
        assert len(crossings) >= 3
        np.testing.assert_allclose(np.diff(crossings), np.pi * np.sqrt(m[i] / k[i]), rtol=1e-3)


# ------------------------------------------------------------------------------- splits
def test_splits_have_distinct_seeds_and_do_not_overlap():
    keys = [tuple(np.asarray(systems._generate.split_key(SEED, s))) for s in systems.SPLITS]
    assert len(set(keys)) == len(keys)
    by_split = {s: data("msd_zero", s) for s in systems.SPLITS}
    rows = {s: set(zip(*d.params.values(), strict=True)) for s, d in by_split.items()}
    ics = {s: {tuple(r) for r in d.y0} for s, d in by_split.items()}
    for a in systems.SPLITS:
        assert len(rows[a]) == N
        for b in systems.SPLITS:
            if a < b:
                assert not rows[a] & rows[b] and not ics[a] & ics[b], (a, b)
    train = systems.get_system("msd_zero").param_ranges
    for split in ("train", "val", "test"):
        for name, (low, high) in train.items():
            values = by_split[split].params[name]
            assert np.all((values >= low) & (values <= high))
    y0 = by_split["train"].y0
    assert np.all(np.abs(y0 - [1.0, 0.0]) <= 0.5) and np.ptp(y0, axis=0).min() > 0.5


def test_same_seed_reproduces_and_datasets_are_prefixes():
    a = data("msd")
    small = systems.generate("msd", 5, seed=SEED)
    np.testing.assert_array_equal(small.y, a.y[:5])
    chunked = systems.generate("msd", 100, seed=SEED, chunk_size=64, progress=True)
    np.testing.assert_array_equal(chunked.y[:N], a.y)
    other = systems.generate("msd", 5, seed=SEED + 1)
    assert not np.array_equal(other.params["k"], small.params["k"])


@pytest.mark.parametrize("name", ["msd", "lotka_volterra"])
def test_ood_parameters_fall_outside_the_training_box(name):
    system, ds = systems.get_system(name), data(name, "ood")
    inside = np.ones(N, bool)
    for p, (low, high) in system.param_ranges.items():
        wlow, whigh = system.ood_ranges[p]
        assert np.all((ds.params[p] >= wlow) & (ds.params[p] <= whigh))
        inside &= (ds.params[p] >= low) & (ds.params[p] <= high)
    assert not inside.any()
    wide = systems.generate(name, 64, split="ood", seed=SEED, ood_mode="wide")
    inside_wide = np.ones(64, bool)
    for p, (low, high) in system.param_ranges.items():
        inside_wide &= (wide.params[p] >= low) & (wide.params[p] <= high)
    assert 0 < inside_wide.mean() < 0.5  # "wide" keeps the reference's in-box draws


def test_sine_has_no_ood_split_and_matches_spec():
    ds = data("sine")
    assert ds.y.shape == (N, 16, 1)
    assert np.all(np.abs(ds.params["phi"]) <= np.pi / 6)
    with pytest.raises(ValueError, match="no OOD split"):
        systems.generate("sine", 4, split="ood")


# ---------------------------------------------------------------------------- LV task
def _repeat_copy_loops(traj, cut, gap):
    core = list(traj[:cut]) + [np.zeros(traj.shape[1])] * gap
    full = np.array([core[s % len(core)] for s in range(traj.shape[0])])
    clipped = np.array([traj[s] if s < cut else np.zeros(traj.shape[1]) for s in range(len(traj))])
    return full, clipped


def test_repeat_copy_construction():
    sizes = {"train": N}  # normalisation statistics from a 32-trajectory train split
    train = data("lotka_volterra_repeat", split_sizes=sizes)
    test = data("lotka_volterra_repeat", "test", split_sizes=sizes)
    cut = train.extras["cut"]
    assert np.all((cut >= 32) & (cut <= 63)) and len(np.unique(cut)) > 5
    low, high = train.normalisation
    raw_train = data("lotka_volterra")  # the same draws, before the repeat-copy construction
    pairs = [_repeat_copy_loops(raw_train.y[i], cut[i], 50) for i in range(N)]
    full, clipped = np.array([f for f, _ in pairs]), np.array([c for _, c in pairs])
    assert low == 0.0 and high == pytest.approx(np.max(full))
    np.testing.assert_allclose(train.denormalise(train.y), np.array(full), atol=1e-5)
    np.testing.assert_allclose(train.denormalise(train.inputs), np.array(clipped), atol=1e-5)
    assert train.y.min() == -1 and train.y.max() == pytest.approx(1)
    np.testing.assert_array_equal(train.y[0, cut[0]: cut[0] + 50], -1)
    assert test.normalisation == train.normalisation  # test uses TRAIN statistics
    raw_test = data("lotka_volterra", "test")
    i = 4
    full_i, _ = _repeat_copy_loops(raw_test.y[i], test.extras["cut"][i], 50)
    np.testing.assert_allclose(test.denormalise(test.y[i]), full_i, atol=1e-5)


# ------------------------------------------------------------------------------ errors
def test_registry_and_bad_input_errors(monkeypatch):
    monkeypatch.setattr(systems._registry, "_REGISTRY", dict(systems._registry._REGISTRY))
    names = systems.list_systems()
    for name in ("msd", "msd_zero", "lotka_volterra", "lotka_volterra_repeat", "sine", "lorenz63",
                 "pendulum"):
        assert name in names
    with pytest.raises(ValueError, match="unknown system 'nope'.*msd"):
        systems.generate("nope", 4)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n_trajectories must be a positive int"):
            systems.generate("msd", bad)
    with pytest.raises(ValueError, match=r"unknown override\(s\) \['mass'\]"):
        systems.generate("msd", 4, mass=(1, 2))
    with pytest.raises(ValueError, match="inverted"):
        systems.generate("msd", 4, k=(16.0, 4.0))
    with pytest.raises(ValueError, match="unknown split"):
        systems.generate("msd", 4, split="validation")
    with pytest.raises(ValueError, match="already registered"):
        systems.register_system("msd", systems.get_system("msd"))
    systems.register_system("msd", systems.get_system("msd_zero"), overwrite=True)
    assert systems.get_system("msd").name == "msd_zero"


def test_bad_vector_fields():
    wrong_shape = systems.from_vector_field(lambda t, y, p: y[:1], 2, {"a": (1, 2)}, y0=(1, 0))
    with pytest.raises(ValueError, match=r"returned shape \(1,\), expected \(2,\)"):
        systems.generate(wrong_shape, 4)
    nan_field = systems.from_vector_field(lambda t, y, p: y / 0 * 0, 2, {"a": (1, 2)}, y0=(1, 0))
    with pytest.raises(ValueError, match="non-finite"):
        systems.generate(nan_field, 4)
    with pytest.raises(ValueError, match="clash"):
        systems.from_vector_field(lambda t, y, p: y, 1, {"rtol": (1, 2)}, y0=(1,))
    with pytest.raises(ValueError, match="inverted"):
        systems.from_vector_field(lambda t, y, p: y, 1, {"a": (2, 1)}, y0=(1,))


def test_systems_declare_their_facts():
    """Channel names (and units where known) per data channel, and the true physical
    parameters in the quantities the physical decoders read."""
    for name in systems.list_systems():
        system = systems.get_system(name)
        for facts in (system.channel_names, system.channel_units):
            assert facts is None or len(facts) == system.state_size, name
    assert systems.get_system("msd_zero").channel_names == ("position x", "velocity v")
    pendulum = systems.get_system("pendulum")
    assert pendulum.channel_units == ("rad", "rad/s") and pendulum.time_unit == "s"
    msd = systems.get_system("msd").physical_parameters({"m": 0.04, "k": np.float32(9), "c": 0.06})
    assert msd == pytest.approx({"omega0": 15.0, "zeta": 0.05})  # sqrt(k/m), c/(2 sqrt(km))
    assert systems.get_system("sine").physical_parameters({"phi": 0.25}) == {"phase": 0.25}
    # a user system knows none of them: names default in the figures, truth is the params
    user = systems.from_vector_field(lambda t, y, p: -p["a"] * y, 1, {"a": (1, 2)}, y0=[1.0])
    assert (user.channel_names, user.channel_units, user.time_unit) == (None, None, None)
    assert user.physical_parameters({"a": np.float32(1.5)}) == {"a": 1.5}


def test_user_system_end_to_end(monkeypatch):
    monkeypatch.setattr(systems._registry, "_REGISTRY", dict(systems._registry._REGISTRY))
    duffing = systems.from_vector_field(
        lambda t, y, p: jnp.stack([y[1], -p["delta"] * y[1] - y[0] - p["beta"] * y[0] ** 3]),
        state_size=2, param_ranges={"delta": (0.1, 0.3), "beta": (0.5, 2.0)},
        y0=((0.5, 1.5), 0.0), name="duffing", t_end=10.0, max_steps=4096,
    )
    systems.register_system("duffing", duffing)
    ds = systems.generate("duffing", N, seed=SEED)
    assert ds.name == "duffing" and ds.y.shape == (N, 256, 2) and np.all(ds.y0[:, 1] == 0)
    i = 5
    p = {k: float(v[i]) for k, v in ds.params.items()}
    ref = solve_ivp(
        lambda t, y: [y[1], -p["delta"] * y[1] - y[0] - p["beta"] * y[0] ** 3], (0, 10),
        ds.y0[i].astype(np.float64), t_eval=ds.t.astype(np.float64), rtol=1e-10, atol=1e-10,
    ).y.T
    np.testing.assert_allclose(ds.y[i], ref, atol=1e-4)
    assert "duffing" in json.dumps(ds.config) and "#" in ds.config["system"]["fn"]
    # a softening spring started beyond its barrier escapes to infinity in finite time
    with pytest.raises(ValueError, match="integration of system 'duffing' failed"):
        systems.generate("duffing", 4, beta=(-5.0, -4.0), y0_ranges=((2.0, 2.0), (0.0, 0.0)))


# ------------------------------------------------------------------------------- files
def test_save_load_round_trip(tmp_path):
    ds = data("lotka_volterra_repeat", split_sizes={"train": N})
    path = systems.save(ds, tmp_path / "lv.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["lv.npz"]  # no temporary file left
    back = systems.load(path)
    for field in ("t", "y", "y0"):
        np.testing.assert_array_equal(getattr(back, field), getattr(ds, field))
    assert back.params.keys() == ds.params.keys() and back.extras.keys() == ds.extras.keys()
    for k in ds.params:
        np.testing.assert_array_equal(back.params[k], ds.params[k])
    np.testing.assert_array_equal(back.inputs, ds.inputs)
    assert (back.name, back.split, back.config, back.normalisation) == (
        ds.name, ds.split, ds.config, ds.normalisation
    )


def test_corrupt_files_give_clear_errors(tmp_path):
    path = systems.save(data("msd"), tmp_path / "msd.npz")
    blob = path.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(blob[: len(blob) // 2])
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file at all")
    for bad in ("truncated.npz", "garbage.npz"):
        with pytest.raises(ValueError, match="not a valid systems data set"):
            systems.load(tmp_path / bad)
    with pytest.raises(FileNotFoundError):
        systems.load(tmp_path / "missing.npz")


def test_cache_regenerates_when_config_changes(tmp_path):
    kw = dict(split="train", seed=SEED, cache_dir=tmp_path)
    first = systems.generate_cached("msd", N, **kw)
    path = systems.cache_path("msd", N, **kw)
    stamp = path.stat().st_mtime_ns
    again = systems.generate_cached("msd", N, **kw)
    assert path.stat().st_mtime_ns == stamp and again.config_hash == first.config_hash
    changed = systems.generate_cached("msd", N, k=(5.0, 6.0), **kw)
    assert changed.config_hash != first.config_hash and changed.params["k"].max() <= 6.0
    assert systems.load(path).config_hash == changed.config_hash  # file rewritten
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(UserWarning, match="regenerating"):
        fixed = systems.generate_cached("msd", N, k=(5.0, 6.0), **kw)
    np.testing.assert_array_equal(fixed.y, changed.y)
