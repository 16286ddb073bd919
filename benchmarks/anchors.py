"""Against what a physicist would use: SINDy and per-trajectory ODE fits (issue 10).

On the same test trajectories, contexts and noise, four reconstructions of the steps
after an observed context (MSE in raw units over every step after the context, both
channels, against the clean trajectory):

- `sindy`: PySINDy fitted on each context alone (polynomial library up to degree 3,
  STLSQ); the threshold and the differentiation (finite differences, or smoothed
  ones) are chosen per condition on validation trajectories, never on test.
- `oracle_fit`: the system's true ODE, parameters and initial state fitted to the
  context by Levenberg-Marquardt through diffrax from several restarts (the accuracy
  ceiling of a model with the right physics).
- `warp_phys`, `warp`: WARP with a physical root (MSD: the damped oscillator; LV: one
  RK4 step of the LV equations, parameters read from theta_t, states clipped to a box)
  and with an MLP root (the main table's cpu sizes), trained once per system through
  `warp_phys.train` for a fixed wall-clock budget on training trajectories whose inputs
  carry the three noise levels in equal parts (targets clean; one model serves every
  noise level and context), model selection on noisy validation trajectories at a
  50-step context.

Conditions: observation noise 0, 1 % and 5 % of each channel's standard deviation
(training split), added to the context only; contexts of 25, 50 and 100 steps; MSD,
MSD-Zero and plain Lotka-Volterra trajectories (256 steps on [0, 1]).

Compute per trajectory is the wall-clock of the whole batch of test trajectories
divided by their number, after compilation (compile times are in the JSON): SINDy's
fits plus the batched simulation, the oracle's batched fit and forward solve, WARP's
batched forecast (its training time is reported separately: it is paid once per system).
A failed or diverging forecast is clipped to +-10x the training data's largest value
and counts with that error (`failed` counts them).

    python -m benchmarks.anchors            # writes results/anchors.json, figures, README
    python -m benchmarks.anchors --reuse    # keeps the finished blocks of results/anchors.json
    python -m benchmarks.anchors --smoke --methods sindy warp_phys   # the test suite's run
    python -m benchmarks.anchors --render   # figures and README block from the JSON
"""

import dataclasses
import importlib.util
import json
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import systems
import warp_phys as wp
from benchmarks import _anchors_report as report
from benchmarks import _fits
from benchmarks import _harness as harness
from benchmarks._anchors_report import METHODS

# MSD-Zero is MSD's ODE with other initial states: its oracle fits MSD's equations (one
# compilation for both)
EQUATIONS = {"msd_zero": "msd"}


@dataclasses.dataclass(frozen=True)
class Preset:
    """Sizes of one benchmark run (`cpu`: about 20-30 min on 2 shared cores)."""

    systems: tuple[str, ...] = ("lotka_volterra", "msd", "msd_zero")  # LV first: LV prior
    noises: tuple[float, ...] = (0.0, 0.01, 0.05)
    contexts: tuple[int, ...] = (25, 50, 100)
    n_test: int = 32
    n_val: int = 12
    n_train: int = 512
    thresholds: tuple[float, ...] = (0.01, 0.1, 0.3, 1.0, 3.0)
    differentiation: tuple[str, ...] = _fits.SINDY_DIFFERENTIATION
    restarts: int = 4
    lm_steps: int = 80
    train_steps: int = 4000
    train_seconds: float = 120.0
    batch_size: int = 16
    val_every: int = 25
    seed: int = 0


PRESETS = {
    "cpu": Preset(),
    "smoke": Preset(
        systems=("msd",), noises=(0.0, 0.05), contexts=(25,), n_test=2, n_val=2, n_train=8,
        thresholds=(0.1,), differentiation=("smoothed_finite_difference",), restarts=1,
        lm_steps=3, train_steps=2, train_seconds=30.0, batch_size=4, val_every=1,
    ),
}  # fmt: skip


# ------------------------------------------------------------------------------ data
def _noisy(y: np.ndarray, levels: np.ndarray, std: np.ndarray, seed: int) -> np.ndarray:
    """`y (N, T, D)` plus Gaussian noise of `levels (N,)` x `std (D,)` (fixed seed)."""
    eps = np.random.default_rng(seed).standard_normal(y.shape)
    return (y + levels[:, None, None] * std * eps).astype(np.float32)


def load_data(system: str, preset: Preset) -> dict:
    """Clean train / val / test trajectories and the training split's channel std."""
    seed = preset.seed
    train = systems.generate(system, preset.n_train, split="train", seed=seed)
    val = systems.generate(system, preset.n_val, split="val", seed=seed)
    test = systems.generate(system, preset.n_test, split="test", seed=seed)
    y_train = np.asarray(train.y, np.float32)
    return {
        "t": np.asarray(test.t, np.float64), "train": y_train,
        "val": np.asarray(val.y, np.float32), "test": np.asarray(test.y, np.float32),
        "std": y_train.std(axis=(0, 1)), "bound": _fits.BOUND_FACTOR * np.abs(y_train).max((0, 1)),
    }  # fmt: skip


def _observed(data: dict, split: str, noise: float) -> np.ndarray:
    """The observed (noisy) version of a split: the same noise draw for every method and
    context (a shorter context is a prefix of a longer one)."""
    y = data[split]
    seed = {"val": 1, "test": 2}[split] * 1000 + round(noise * 1e4)
    return _noisy(y, np.full(len(y), noise), data["std"], seed)


def _scores(forecast: np.ndarray, target: np.ndarray, bound: np.ndarray) -> dict:
    clipped, failed = _fits.bounded(forecast, bound)
    per_traj = ((clipped - target) ** 2).mean(axis=(1, 2))
    return {"mse": float(per_traj.mean()), "median_mse": float(np.median(per_traj)),
            "failed": int(failed.sum())}  # fmt: skip


# ------------------------------------------------------------------------------ SINDy
def sindy_rows(system: str, data: dict, preset: Preset, log) -> list[dict]:
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
            forecast, fit_s, sim_s = _fits.sindy_forecast(
                test_obs[:, :L], data["t"], T - L, th, d
            )
            row = _scores(forecast, data["test"][:, L:], data["bound"])
            row.update(seconds_per_trajectory=(fit_s + sim_s) / len(forecast), threshold=th,
                       differentiation=d, val_mse=min(val_mse))  # fmt: skip
            rows.append(dict(system=system, method="sindy", noise=noise, context=L, **row))
            log(rows[-1])
    return rows


# ------------------------------------------------------------------------- oracle fit
def oracle_rows(system: str, data: dict, preset: Preset, log) -> list[dict]:
    """The true-ODE least-squares fit per (noise, context), all test trajectories at once."""
    rows, T = [], data["test"].shape[1]
    model = systems.get_system(EQUATIONS.get(system, system))
    for noise in preset.noises:
        test_obs = _observed(data, "test", noise)
        for L in preset.contexts:
            forecast, seconds, compile_s = _fits.oracle_forecast(
                model, test_obs[:, :L], data["t"], T - L, data["std"], preset.restarts,
                max(preset.contexts), lm_steps=preset.lm_steps,
            )  # fmt: skip
            row = _scores(forecast, data["test"][:, L:], data["bound"])
            row.update(seconds_per_trajectory=seconds / len(forecast),
                       compile_seconds=compile_s, restarts=preset.restarts)  # fmt: skip
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
        return jnp.stack([p["alpha"] * prey - p["beta"] * prey * pred,
                          p["delta"] * prey * pred - p["gamma"] * pred])  # fmt: skip

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
        lv_step, {n: () for n in names}, data_size=2,
        transforms={n: "softplus" for n in names},
        init={n: sum(ranges[n]) / 2 for n in names}, label="lotka_volterra_rk4",
    )  # fmt: skip


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
        system=system, model="warp", root_width=16, root_depth=2, hyper_width=16,
        hyper_depth=1, decoder="damped_oscillator" if method == "warp_phys" else "mlp",
        decoder_options={"activation": "swish"},
    )  # fmt: skip
    return wp.build_model(config, 2, T, key=key, normalizer=normalizer)


def train_warp(system: str, method: str, data: dict, preset: Preset):
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
        model, (np.asarray(norm.apply(inputs)), np.asarray(norm.apply(y))),
        steps=preset.train_steps, batch_size=preset.batch_size,
        optimizer=wp.OptimizerOptions(lr=3e-3 if method == "warp_phys" else 2e-3),
        objective=wp.ObjectiveOptions(forcing_prob=0.25),
        val_data=(norm.apply(val_inputs), norm.apply(data["val"])),
        validation=wp.ValidationOptions(
            context=sorted(preset.contexts)[len(preset.contexts) // 2], every=preset.val_every
        ),
        max_seconds=preset.train_seconds, key=train_key,
        progress=False,
    )  # fmt: skip
    return model, norm, time.perf_counter() - start, history


def warp_rows(system: str, method: str, data: dict, preset: Preset, log) -> list[dict]:
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
            row.update(seconds_per_trajectory=seconds / len(forecast), compile_seconds=compile_s[L],
                       train_seconds=train_s, train_steps=history["step"][-1],
                       parameters=wp.count_parameters(model))  # fmt: skip
            rows.append(dict(system=system, method=method, noise=noise, context=L, **row))
            log(rows[-1])
    return rows


# ------------------------------------------------------------------------------ main
def _reusable(previous: dict | None, preset_name: str) -> dict:
    """`{(system, method): rows}` of the finished blocks of an earlier run of the same
    preset and settings (see `--reuse`)."""
    preset = PRESETS[preset_name]
    settings = json.loads(json.dumps(dataclasses.asdict(preset)))  # tuples as lists
    if not previous or previous.get("preset") != preset_name:
        return {}
    if previous.get("settings") != settings:
        return {}
    failed = {tuple(e.split(":")[0].split("/")) for e in previous.get("errors", [])}
    blocks: dict = {}
    for r in previous.get("rows", []):
        blocks.setdefault((r["system"], r["method"]), []).append(r)
    size = len(preset.noises) * len(preset.contexts)
    return {k: v for k, v in blocks.items() if len(v) == size and k not in failed}


def run(preset_name: str, log=print, checkpoint=None, methods=METHODS, previous=None) -> dict:
    """The rows of `methods` under a preset; **returns** the result dict of the JSON.

    `checkpoint(result)` is called after each (system, method) block with the rows so
    far (`complete` False). A method that raises is recorded in `errors` and the run
    goes on; without pysindy installed, the SINDy rows are skipped with a note. Blocks
    finished in `previous` (an earlier result of the same preset and settings) are
    reused as they are (their `block_seconds` too).
    """
    preset = PRESETS[preset_name]
    start = time.perf_counter()
    rows, errors, seconds, notes = [], [], {}, []
    reuse = _reusable(previous, preset_name)
    if "sindy" in methods and importlib.util.find_spec("pysindy") is None:
        methods = tuple(m for m in methods if m != "sindy")
        notes.append("SINDy skipped: pysindy is not installed (pip install -e '.[bench]').")
    for system in preset.systems:
        data = load_data(system, preset)
        blocks = [("sindy", sindy_rows), ("oracle_fit", oracle_rows)]
        blocks += [(m, lambda s, d, p, lg, m=m: warp_rows(s, m, d, p, lg))
                   for m in ("warp_phys", "warp")]  # fmt: skip
        for method, block in blocks:
            if method not in methods:
                continue
            name = f"{system}/{method}"
            if (system, method) in reuse:
                rows += reuse[(system, method)]
                seconds[name] = previous.get("block_seconds", {}).get(name)
                print(f"reused {name} from the earlier result", flush=True)
                continue
            tic = time.perf_counter()
            try:
                rows += block(system, data, preset, log)
            except Exception as err:  # recorded, not hidden: the README lists it
                errors.append(f"{name}: {type(err).__name__}: {err}")
                print(f"ERROR {errors[-1]}", flush=True)
            seconds[name] = round(time.perf_counter() - tic, 1)
            if checkpoint is not None:
                checkpoint({"preset": preset_name, "complete": False,
                            "settings": dataclasses.asdict(preset), "rows": rows,
                            "errors": errors, "block_seconds": seconds})  # fmt: skip
    result = {
        "preset": preset_name, "device": harness.device(), "date": harness.stamp(),
        "n_test": preset.n_test, "n_val": preset.n_val, "n_train": preset.n_train,
        "settings": dataclasses.asdict(preset), "total_seconds": time.perf_counter() - start,
        "complete": not errors, "errors": errors, "block_seconds": seconds, "rows": rows,
    }  # fmt: skip
    result["targets"] = report.targets(rows)
    result["notes"] = notes + NOTES
    return result


NOTES = [
    "WARP-Phys on LV uses a prior written for this benchmark (one RK4 step of the LV "
    "equations, D_theta = 4, states clipped to [0, 3x the largest training value]); "
    "the paper has no WARP-Phys on LV.",
    "The oracle fit knows the exact equations and is started from the training "
    "parameter box: it is the accuracy ceiling, not a competitor one would deploy "
    "without that knowledge.",
    "WARP and WARP-Phys train for a fixed wall-clock budget per model on the benchmark "
    "machine (steps above); their MSE is that of these short trainings, not of converged "
    "models, and will move with the machine's load.",
]


def _log(row: dict) -> None:
    print(f"{row['system']:>14} {row['method']:>10} noise {row['noise']:<5} context "
          f"{row['context']:>3}: mse {row['mse']:.4g} (median {row['median_mse']:.3g}, "
          f"{row['failed']} failed), {row['seconds_per_trajectory']:.3g} s/traj", flush=True)


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark, writes the JSON and figures, splices the README block and
    merges into `results/reconstruction.json` when that table is complete."""
    parser = harness.parser("anchors", __doc__)
    parser.add_argument("--figures", type=Path, default=None,
                        help="figure folder (default figures/; smoke: the temp folder)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                        help="run only these methods (no README, no merge)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the finished (system, method) blocks of the JSON at "
                             "--out (same preset and settings; after an interruption)")
    args = harness.parse(parser, argv)
    name = "smoke" if args.smoke else "cpu"
    figures = args.figures or (args.out.parent if args.smoke else harness.FIGURES)
    args.no_readme |= len(args.methods) < len(METHODS)

    def draw(result):
        for system in sorted({r["system"] for r in result["rows"]}):
            report.plot_system(result["rows"], system, figures / f"anchors_{system}.png")

    if args.render:
        return harness.finish(args, harness.read_json(args.render), report.markdown, draw)
    previous = harness.read_json(args.out) if args.reuse and args.out.is_file() else None
    result = run(name, log=_log, checkpoint=lambda partial: harness.write_json(args.out, partial),
                 methods=tuple(args.methods), previous=previous)
    harness.write_json(args.out, result)
    harness.finish(args, result, report.markdown, draw)
    if not (args.smoke or args.no_readme):
        merged = report.merge_into_reconstruction(result, harness.RESULTS / "reconstruction.json")
        print("merged into reconstruction.json" if merged else
              "reconstruction.json missing or incomplete: not merged")
    return result


if __name__ == "__main__":
    main()
