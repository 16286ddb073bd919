"""The four methods' rows of `benchmarks.anchors`, one (noise, context) condition each:
SINDy and the oracle fit per trajectory (`benchmarks._fits`), WARP and WARP-Phys trained
once per system (LV: an RK4 prior written for this benchmark), each scored against the
clean test trajectories with a failed forecast clipped to a box (`_fits.bounded`)."""

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import systems
import warp_phys as wp
from benchmarks import _fits

# MSD-Zero is MSD's ODE with other initial states: its oracle fits MSD's equations (one
# compilation for both)
EQUATIONS = {"msd_zero": "msd"}


# ------------------------------------------------------------------------------ data
def _noisy(y: np.ndarray, levels: np.ndarray, std: np.ndarray, seed: int) -> np.ndarray:
    """`y (N, T, D)` plus Gaussian noise of `levels (N,)` x `std (D,)` (fixed seed)."""
    eps = np.random.default_rng(seed).standard_normal(y.shape)
    return (y + levels[:, None, None] * std * eps).astype(np.float32)


def load_data(system: str, preset) -> dict:
    """Clean train / val / test trajectories and the training split's channel std."""
    seed = preset.seed
    train = systems.generate(system, preset.n_train, split="train", seed=seed)
    val = systems.generate(system, preset.n_val, split="val", seed=seed)
    test = systems.generate(system, preset.n_test, split="test", seed=seed)
    y_train = np.asarray(train.y, np.float32)
    return {
        "t": np.asarray(test.t, np.float64),
        "train": y_train,
        "val": np.asarray(val.y, np.float32),
        "test": np.asarray(test.y, np.float32),
        "std": y_train.std(axis=(0, 1)),
        "bound": _fits.BOUND_FACTOR * np.abs(y_train).max((0, 1)),
    }


def _observed(data: dict, split: str, noise: float) -> np.ndarray:
    """The observed (noisy) version of a split: the same noise draw for every method and
    context (a shorter context is a prefix of a longer one)."""
    y = data[split]
    seed = {"val": 1, "test": 2}[split] * 1000 + round(noise * 1e4)
    return _noisy(y, np.full(len(y), noise), data["std"], seed)


def _scores(forecast: np.ndarray, target: np.ndarray, bound: np.ndarray) -> dict:
    clipped, failed = _fits.bounded(forecast, bound)
    per_traj = ((clipped - target) ** 2).mean(axis=(1, 2))
    return {
        "mse": float(per_traj.mean()),
        "median_mse": float(np.median(per_traj)),
        "failed": int(failed.sum()),
    }


# ------------------------------------------------------------------------------ SINDy
def sindy_rows(system: str, data: dict, preset, log) -> list[dict]:
    """SINDy per (noise, context); its threshold and differentiation picked on val."""
    rows, T = [], data["test"].shape[1]
    grid = [(th, d) for th in preset.thresholds for d in preset.differentiation]
    for noise in preset.noises:
        val_obs, test_obs = _observed(data, "val", noise), _observed(data, "test", noise)
        for L in preset.contexts:
            val_mse = []
            for th, d in grid:
                forecast, _, _ = _fits.sindy_forecast(val_obs[:, :L], data["t"], T - L, th, d)
                val_mse.append(_scores(forecast, data["val"][:, L:], data["bound"])["mse"])
            th, d = grid[int(np.argmin(val_mse))]
            forecast, fit_s, sim_s = _fits.sindy_forecast(test_obs[:, :L], data["t"], T - L, th, d)
            row = _scores(forecast, data["test"][:, L:], data["bound"])
            row.update(
                seconds_per_trajectory=(fit_s + sim_s) / len(forecast),
                threshold=th,
                differentiation=d,
                val_mse=min(val_mse),
            )
            rows.append(dict(system=system, method="sindy", noise=noise, context=L, **row))
            log(rows[-1])
    return rows


# ------------------------------------------------------------------------- oracle fit
def oracle_rows(system: str, data: dict, preset, log) -> list[dict]:
    """The true-ODE least-squares fit per (noise, context), all test trajectories at once."""
    rows, T = [], data["test"].shape[1]
    model = systems.get_system(EQUATIONS.get(system, system))
    for noise in preset.noises:
        test_obs = _observed(data, "test", noise)
        for L in preset.contexts:
            forecast, seconds, compile_s = _fits.oracle_forecast(
                model,
                test_obs[:, :L],
                data["t"],
                T - L,
                data["std"],
                preset.restarts,
                max(preset.contexts),
                lm_steps=preset.lm_steps,
            )
            row = _scores(forecast, data["test"][:, L:], data["bound"])
            row.update(
                seconds_per_trajectory=seconds / len(forecast),
                compile_seconds=compile_s,
                restarts=preset.restarts,
            )
            rows.append(dict(system=system, method="oracle_fit", noise=noise, context=L, **row))
            log(rows[-1])
    return rows


# ----------------------------------------------------------------------------- WARP
def lv_decoder(mean: np.ndarray, std: np.ndarray, top: float, dt: float) -> wp.FunctionDecoder:
    """WARP-Phys's LV root: one RK4 step of `x' = a x - b x y, y' = d x y - g y` in raw
    units from the previous (normalised) state, with (a, b, d, g) > 0 read from theta_t
    (initialised at the centre of the training ranges); states clipped to `[0, top]`."""
    mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    top = float(top)
    ranges = systems.get_system("lotka_volterra").param_ranges
    names = ("alpha", "beta", "delta", "gamma")

    def field(p, z):
        prey, pred = z[0], z[1]
        return jnp.stack(
            [
                p["alpha"] * prey - p["beta"] * prey * pred,
                p["delta"] * prey * pred - p["gamma"] * pred,
            ]
        )

    def lv_step(p, tau, x):
        del tau
        # populations stay in [0, top]: a free-running rollout with wrong parameters
        # would otherwise grow exponentially and overflow float32 within 256 steps
        z = jnp.clip(x * jnp.asarray(std) + jnp.asarray(mean), 0.0, top)
        k1 = field(p, z)
        k2 = field(p, z + 0.5 * dt * k1)
        k3 = field(p, z + 0.5 * dt * k2)
        k4 = field(p, z + dt * k3)
        z = jnp.clip(z + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4), 0.0, top)
        return (z - jnp.asarray(mean)) / jnp.asarray(std)

    return wp.FunctionDecoder(
        lv_step,
        {n: () for n in names},
        data_size=2,
        transforms={n: "softplus" for n in names},
        init={n: sum(ranges[n]) / 2 for n in names},
        label="lotka_volterra_rk4",
    )


def build_warp(
    system: str, method: str, normalizer: wp.Normalizer, T: int, top: float, key
) -> wp.WARP:
    """The WARP model of a row: the main table's cpu sizes (root 16x2 swish, hypernetwork
    16); `warp_phys` uses the system's physical root (LV: states clipped to `[0, top]`)."""
    if method == "warp_phys" and system == "lotka_volterra":
        stats = normalizer.to_dict()
        decoder = lv_decoder(np.array(stats["mean"]), np.array(stats["std"]), top, 1.0 / (T - 1))
        return wp.WARP(2, decoder=decoder, hyper_width=16, hyper_depth=1, seq_len=T, key=key)
    config = wp.RunConfig(
        system=system,
        model="warp",
        root_width=16,
        root_depth=2,
        hyper_width=16,
        hyper_depth=1,
        decoder="damped_oscillator" if method == "warp_phys" else "mlp",
        decoder_options={"activation": "swish"},
    )
    return wp.build_model(config, 2, T, key=key, normalizer=normalizer)


def train_warp(system: str, method: str, data: dict, preset):
    """Trains one WARP model on the training split with the noise levels mixed in.

    **Returns:** `(model, normalizer, train seconds, history)`.
    """
    y, std = data["train"], data["std"]
    levels = np.resize(np.asarray(preset.noises, np.float32), len(y))
    inputs = _noisy(y, levels, std, seed=preset.seed + 11)
    val_levels = np.resize(np.asarray(preset.noises, np.float32), len(data["val"]))
    val_inputs = _noisy(data["val"], val_levels, std, seed=preset.seed + 12)
    norm = wp.Normalizer.fit(y)
    T = y.shape[1]
    model_key, train_key = jax.random.split(jax.random.PRNGKey(preset.seed))
    top = 3.0 * float(y.max())  # LV prior's state box: 3x the largest training value
    model = build_warp(system, method, norm, T, top, model_key)
    start = time.perf_counter()
    model, history = wp.train(
        model,
        (np.asarray(norm.apply(inputs)), np.asarray(norm.apply(y))),
        steps=preset.train_steps,
        batch_size=preset.batch_size,
        optimizer=wp.OptimizerOptions(lr=3e-3 if method == "warp_phys" else 2e-3),
        objective=wp.ObjectiveOptions(forcing_prob=0.25),
        val_data=(norm.apply(val_inputs), norm.apply(data["val"])),
        validation=wp.ValidationOptions(
            context=sorted(preset.contexts)[len(preset.contexts) // 2], every=preset.val_every
        ),
        max_seconds=preset.train_seconds,
        key=train_key,
        progress=False,
    )
    return model, norm, time.perf_counter() - start, history


def warp_rows(system: str, method: str, data: dict, preset, log) -> list[dict]:
    """Trains `method` once on `system`, then forecasts every (noise, context)."""
    model, norm, train_s, history = train_warp(system, method, data, preset)
    rows, T = [], data["test"].shape[1]
    forecast_fns, compile_s = {}, {}
    for noise in preset.noises:
        test_obs = _observed(data, "test", noise)
        for L in preset.contexts:
            context = norm.apply(jnp.asarray(test_obs[:, :L]))
            if L not in forecast_fns:  # one compilation per context length, not timed
                forecast_fns[L] = eqx.filter_jit(lambda m, c, h=T - L: wp.reconstruct(m, c, h))
                start = time.perf_counter()
                jax.block_until_ready(forecast_fns[L](model, context))
                compile_s[L] = time.perf_counter() - start
            forecast_fn = forecast_fns[L]
            start = time.perf_counter()
            forecast = jax.block_until_ready(forecast_fn(model, context))
            seconds = time.perf_counter() - start
            row = _scores(np.asarray(norm.invert(forecast)), data["test"][:, L:], data["bound"])
            row.update(
                seconds_per_trajectory=seconds / len(forecast),
                compile_seconds=compile_s[L],
                train_seconds=train_s,
                train_steps=history["step"][-1],
                parameters=wp.count_parameters(model),
            )
            rows.append(dict(system=system, method=method, noise=noise, context=L, **row))
            log(rows[-1])
    return rows
