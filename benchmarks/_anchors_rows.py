"""The methods' rows of `benchmarks.anchors`, one per (noise, context): SINDy and the
oracle fit per trajectory (`_fits`), WARP and WARP-Phys trained once per system (LV: an
RK4 prior written here), WARP-Phys + refine K, scored against the clean trajectories."""

import itertools
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import systems
import warp_phys as wp
from benchmarks import _fits

# MSD-Zero is MSD's ODE from other initial states: its oracle fits MSD's (one compilation)
EQUATIONS = {"msd_zero": "msd"}


def _noisy(y: np.ndarray, levels: np.ndarray, std: np.ndarray, seed: int) -> np.ndarray:
    """`y (N, T, D)` plus Gaussian noise of `levels (N,)` x `std (D,)` (fixed seed)."""
    eps = np.random.default_rng(seed).standard_normal(y.shape)
    return (y + levels[:, None, None] * std * eps).astype(np.float32)


def load_data(system: str, preset) -> dict:
    """Clean train / val / test trajectories and the training split's channel std."""
    splits = {s: getattr(preset, f"n_{s}") for s in ("train", "val", "test")}
    data = {s: systems.generate(system, n, split=s, seed=preset.seed) for s, n in splits.items()}
    out = {s: np.asarray(d.y, np.float32) for s, d in data.items()}
    bound = _fits.BOUND_FACTOR * np.abs(out["train"]).max((0, 1))
    t, std = np.asarray(data["test"].t, np.float64), out["train"].std((0, 1))
    return dict(out, t=t, std=std, bound=bound)


def _observed(data: dict, split: str, noise: float) -> np.ndarray:
    """The observed (noisy) version of a split: the same noise draw for every method and
    context (a shorter context is a prefix of a longer one)."""
    y = data[split]
    seed = {"val": 1, "test": 2}[split] * 1000 + round(noise * 1e4)
    return _noisy(y, np.full(len(y), noise), data["std"], seed)


def _scores(forecast: np.ndarray, target: np.ndarray, bound: np.ndarray) -> dict:
    clipped, failed = _fits.bounded(forecast, bound)
    per_traj = ((clipped - target) ** 2).mean(axis=(1, 2))
    mse, median = float(per_traj.mean()), float(np.median(per_traj))
    return {"mse": mse, "median_mse": median, "failed": int(failed.sum())}


def _rows(system: str, method: str, data: dict, preset, predict) -> list[dict]:
    """One row per (noise, context), each printed: `predict(noise, L, contexts (N, L, D))`
    returns the raw forecast of the rest of each test trajectory and the row's other keys."""
    rows = []
    for noise in preset.noises:
        observed = _observed(data, "test", noise)
        for L in preset.contexts:
            forecast, extra = predict(noise, L, observed[:, :L])
            scores = _scores(forecast, data["test"][:, L:], data["bound"])
            row = dict(system=system, method=method, noise=noise, context=L)
            rows.append(r := dict(row, **scores, **extra))
            what = f"{system:>14} {method:>18} noise {noise:<5} context {L:>3}: mse {r['mse']:.4g}"
            what += f" (median {r['median_mse']:.3g}, {r['failed']} failed)"
            print(f"{what}, {r['seconds_per_trajectory']:.3g} s/traj", flush=True)
    return rows


def sindy_rows(system: str, data: dict, preset) -> list[dict]:
    """SINDy per (noise, context); its threshold and differentiation picked on val."""
    T = data["test"].shape[1]
    grid = list(itertools.product(preset.thresholds, preset.differentiation))

    def predict(noise, L, contexts):
        val = _observed(data, "val", noise)[:, :L]
        forecasts = (_fits.sindy_forecast(val, data["t"], T - L, th, d)[0] for th, d in grid)
        val_mse = [_scores(f, data["val"][:, L:], data["bound"])["mse"] for f in forecasts]
        th, d = grid[int(np.argmin(val_mse))]
        forecast, fit_s, sim_s = _fits.sindy_forecast(contexts, data["t"], T - L, th, d)
        seconds = (fit_s + sim_s) / len(forecast)
        extra = dict(threshold=th, differentiation=d, val_mse=min(val_mse))
        return forecast, dict(seconds_per_trajectory=seconds, **extra)

    return _rows(system, "sindy", data, preset, predict)


def oracle_rows(system: str, data: dict, preset) -> list[dict]:
    """The true-ODE least-squares fit per (noise, context), all test trajectories at once."""
    T, model = data["test"].shape[1], systems.get_system(EQUATIONS.get(system, system))
    fit = (data["t"], data["std"], preset.restarts, max(preset.contexts), preset.lm_steps)

    def predict(noise, L, contexts):
        forecast, seconds, compile_s = _fits.oracle_forecast(model, contexts, T - L, *fit)
        extra = dict(compile_seconds=compile_s, restarts=preset.restarts)
        return forecast, dict(seconds_per_trajectory=seconds / len(forecast), **extra)

    return _rows(system, "oracle_fit", data, preset, predict)


# ----------------------------------------------------------------------------- WARP
def lv_decoder(mean: np.ndarray, std: np.ndarray, top: float, dt: float) -> wp.FunctionDecoder:
    """WARP-Phys's LV root: one RK4 step of `x' = a x - b x y, y' = d x y - g y` in raw
    units from the previous (normalised) state, with (a, b, d, g) > 0 read from theta_t
    (initialised at the centre of the training ranges); states clipped to `[0, top]`."""
    mean, std, top = jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32), float(top)
    lv = systems.get_system("lotka_volterra")
    field, names = lambda p, z: lv.vector_field(0.0, z, p), lv.param_names

    def lv_step(p, tau, x):
        del tau
        # populations stay in [0, top]: a free-running rollout with wrong parameters
        # would otherwise grow exponentially and overflow float32 within 256 steps
        z = jnp.clip(x * std + mean, 0.0, top)
        k1 = field(p, z)
        k2 = field(p, z + 0.5 * dt * k1)
        k3 = field(p, z + 0.5 * dt * k2)
        k4 = field(p, z + dt * k3)
        return (jnp.clip(z + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4), 0.0, top) - mean) / std

    shapes, transforms = {n: () for n in names}, {n: "softplus" for n in names}
    init = {n: sum(lv.param_ranges[n]) / 2 for n in names}
    options = dict(transforms=transforms, init=init, label="lotka_volterra_rk4")
    return wp.FunctionDecoder(lv_step, shapes, data_size=2, **options)


def held(system: str, method: str, preset) -> bool:
    """Whether the row's WARP is the CLI's held WARP-Phys: a system in `preset.held`
    (never LV, whose prior is written here)."""
    return system in preset.held and method == "warp_phys" and system != "lotka_volterra"


def build_warp(system: str, method: str, normalizer, T: int, top: float, key, preset):
    """The WARP model of a row: root 16x2 swish, hypernetwork 16; `warp_phys` uses the
    system's physical root (LV: states clipped to `[0, top]`); `held`: the CLI's
    WARP-Phys (feature drive, readout of tau only, the state held after the context)."""
    if method == "warp_phys" and system == "lotka_volterra":
        stats = normalizer.to_dict()
        decoder = lv_decoder(stats["mean"], stats["std"], top, 1.0 / (T - 1))
        return wp.WARP(2, decoder=decoder, hyper_width=16, hyper_depth=1, seq_len=T, key=key)
    decoder = "damped_oscillator" if method == "warp_phys" else "mlp"
    sizes = dict(root_width=16, root_depth=2, hyper_width=16, hyper_depth=1)
    options = dict(decoder=decoder, decoder_options={"activation": "swish"}, **sizes)
    if not held(system, method, preset):
        # pinned to what the rows of 2026-12-01 measured: the paper's difference drive,
        # theta advancing on its own outputs, the oscillator's readout reading x_prev
        options.update(drive_features=0, free_run="advance")
        if decoder == "damped_oscillator":
            options["decoder_options"]["input_prev"] = True
    config = wp.RunConfig(system=system, model="warp", **options)
    return wp.build_model(config, 2, T, key=key, normalizer=normalizer)


def objective(system: str, method: str, preset) -> wp.ObjectiveOptions:
    """Held: trained on the forecast after `preset.train_context` observed steps (or a
    number drawn up to `train_context_max`) with the `log_mean` loss (the CLI's); else the
    paper's teacher forcing 0.25 from step 1."""
    if held(system, method, preset):
        contexts = dict(context=preset.train_context, context_max=preset.train_context_max)
        return wp.ObjectiveOptions(**contexts, time_reduction="log_mean")
    return wp.ObjectiveOptions(forcing_prob=0.25, context=1)


def train_warp(system: str, method: str, data: dict, preset):
    """One WARP model trained on the training split with the noise levels mixed in:
    `(model, normalizer, train seconds, history)`."""
    y, val, std = data["train"], data["val"], data["std"]
    levels = [np.resize(np.asarray(preset.noises, np.float32), len(x)) for x in (y, val)]
    inputs = _noisy(y, levels[0], std, seed=preset.seed + 11)
    val_inputs = _noisy(val, levels[1], std, seed=preset.seed + 12)
    norm, T = wp.Normalizer.fit(y), y.shape[1]
    model_key, train_key = jax.random.split(jax.random.PRNGKey(preset.seed))
    top = 3.0 * float(y.max())  # LV prior's state box: 3x the largest training value
    model = build_warp(system, method, norm, T, top, model_key, preset)
    context = sorted(preset.contexts)[len(preset.contexts) // 2]
    options = dict(steps=preset.train_steps, batch_size=preset.batch_size, key=train_key)
    options["optimizer"] = wp.OptimizerOptions(lr=3e-3 if method == "warp_phys" else 2e-3)
    options["objective"] = objective(system, method, preset)
    options["validation"] = wp.ValidationOptions(context=context, every=preset.val_every)
    options["val_data"] = (norm.apply(val_inputs), norm.apply(val))
    options.update(max_seconds=preset.train_seconds, progress=False)
    start, train = time.perf_counter(), (np.asarray(norm.apply(inputs)), np.asarray(norm.apply(y)))
    model, history = wp.train(model, train, **options)
    return model, norm, time.perf_counter() - start, history


def warp_rows(system: str, method: str, data: dict, preset, *, refine: int, trained) -> list:
    """`method` trained once per system (`trained`: `train_warp`'s results by (system,
    method), shared by the refined rows), then every (noise, context) forecast; with
    `refine` K >= 1 the prior's parameters refined on the context first (K LM steps)."""
    if (system, method) not in trained:
        trained[(system, method)] = train_warp(system, method, data, preset)
    model, norm, train_s, history = trained[(system, method)]
    T, compiled, compile_s = data["test"].shape[1], {}, {}
    info = dict(train_seconds=train_s, train_steps=history["step"][-1])
    info["parameters"] = wp.count_parameters(model)

    def predict(noise, L, contexts):
        context = norm.apply(jnp.asarray(contexts))
        if L not in compiled:  # one compilation per context length, not timed
            forecast = lambda m, c, h=T - L: wp.reconstruct(m, c, h, refine=refine or None)
            compiled[L] = eqx.filter_jit(forecast)
            start = time.perf_counter()
            jax.block_until_ready(compiled[L](model, context))
            compile_s[L] = time.perf_counter() - start
        start = time.perf_counter()
        forecast = jax.block_until_ready(compiled[L](model, context))
        seconds = (time.perf_counter() - start) / len(forecast)
        extra = dict(seconds_per_trajectory=seconds, compile_seconds=compile_s[L], **info)
        return np.asarray(norm.invert(forecast)), extra

    name = f"{method}_refine{refine}" if refine else method
    return _rows(system, name, data, preset, predict)
