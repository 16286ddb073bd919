"""Per-trajectory anchors for `benchmarks/anchors.py`: SINDy and the true-ODE least-squares fit.

Both reconstruct one trajectory from its observed context alone, with no training set:

- `sindy_forecast`: PySINDy (polynomial library up to degree 3, STLSQ) fitted on the
  context, then its identified vector field integrated forward from the last observed
  state. The identified polynomial field is integrated with diffrax (Tsit5, adaptive),
  all trajectories in one `vmap`, instead of PySINDy's per-trajectory scipy loop; the
  model is the same.
- `oracle_fit`: the system's own `vector_field` (the true ODE family), its parameters
  (log scale, so they stay positive) and initial state fitted to the context by
  Levenberg-Marquardt (optimistix) through a diffrax solve, from several restarts
  drawn from the training parameter box; the best restart is solved forward. One
  jitted function does every trajectory and restart at once.

Every forecast goes through `bounded`: a failed or diverging solve is not dropped but
clipped to a box around the data, so it counts with a large error.
"""

import time
import warnings
from functools import partial

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from systems import AbstractSystem

SINDY_DEGREE = 3
SINDY_DIFFERENTIATION = ("finite_difference", "smoothed_finite_difference")
BOUND_FACTOR = 10.0  # forecasts are clipped to +- BOUND_FACTOR * max |y| of the training data


def bounded(forecast: np.ndarray, bound: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Clip a forecast `(N, H, D)` to `[-bound, bound]` per channel (NaN/inf -> +-bound).

    **Returns:** `(clipped forecast, failed (N,) bool)`: failed where any value was
    non-finite or outside the box.
    """
    forecast = np.asarray(forecast, np.float64)
    bad = ~np.isfinite(forecast) | (np.abs(forecast) > bound)
    clean = np.nan_to_num(forecast, nan=np.inf, posinf=np.inf, neginf=-np.inf)
    return np.clip(clean, -bound, bound), bad.any(axis=(1, 2))


# ---------------------------------------------------------------------------- SINDy
def polynomial_powers(n_vars: int, degree: int) -> np.ndarray:
    """Exponents `(n_features, n_vars)` of PySINDy's `PolynomialLibrary(degree)` in its
    feature order (graded, then lexicographic from the first variable)."""
    rows = []
    for total in range(degree + 1):
        rows.extend(_compositions(total, n_vars))
    return np.array(rows, dtype=int)


def _compositions(total: int, n: int) -> list[tuple[int, ...]]:
    if n == 1:
        return [(total,)]
    return [(k, *rest) for k in range(total, -1, -1) for rest in _compositions(total - k, n - 1)]


def _features(y, powers: np.ndarray):
    cols = []
    for row in powers:
        term = jnp.ones((), y.dtype)
        for i, p in enumerate(row):
            if p:
                term = term * jax.lax.integer_pow(y[i], int(p))
        cols.append(term)
    return jnp.stack(cols)


def fit_sindy(context: np.ndarray, dt: float, threshold: float, differentiation: str):
    """PySINDy coefficients `(D, n_features)` for one context `(L, D)`, or NaN when the
    fit raises (a failure, counted by the caller)."""
    import pysindy as ps

    diff = {
        "finite_difference": ps.FiniteDifference,
        "smoothed_finite_difference": ps.SmoothedFiniteDifference,
    }[differentiation]()
    model = ps.SINDy(
        feature_library=ps.PolynomialLibrary(degree=SINDY_DEGREE),
        optimizer=ps.STLSQ(threshold=threshold),
        differentiation_method=diff,
    )
    n_features = len(polynomial_powers(context.shape[1], SINDY_DEGREE))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(np.asarray(context, np.float64), t=dt)
        coef = np.asarray(model.coefficients(), np.float32)
        expected = polynomial_powers(context.shape[1], SINDY_DEGREE)
        if not np.array_equal(model.feature_library.powers_, expected):
            raise RuntimeError("unexpected PySINDy feature order")
    except (ValueError, np.linalg.LinAlgError, FloatingPointError):
        coef = np.full((context.shape[1], n_features), np.nan, np.float32)
    return coef


_SIMULATE_SHAPES: set = set()


@partial(jax.jit, static_argnames=("n_vars", "max_steps"))
def _simulate_polynomial(coef, x0, ts, t_start, *, n_vars: int, max_steps: int = 4096):
    """Integrates `y' = coef @ features(y)` from `x0` at `t_start` to the times `ts`
    (one trajectory per row of `coef`, `x0`, `ts`, `t_start`); failures give inf."""
    powers = polynomial_powers(n_vars, SINDY_DEGREE)
    term = diffrax.ODETerm(lambda t, y, c: c @ _features(y, powers))

    def one(c, y0, ts_, t0):
        sol = diffrax.diffeqsolve(
            term,
            diffrax.Tsit5(),
            t0,
            ts_[-1],
            None,
            y0,
            args=c,
            saveat=diffrax.SaveAt(ts=ts_),
            stepsize_controller=diffrax.PIDController(rtol=1e-5, atol=1e-7),
            max_steps=max_steps,
            throw=False,
        )
        ok = sol.result == diffrax.RESULTS.successful
        return jnp.where(ok, sol.ys, jnp.inf)

    return jax.vmap(one)(coef, x0, ts, t_start)


def sindy_forecast(
    contexts: np.ndarray, t: np.ndarray, horizon: int, threshold: float, differentiation: str
) -> tuple[np.ndarray, float, float]:
    """SINDy fitted on each context `(N, L, D)` of a trajectory sampled at times `t`
    (`(T,)`, evenly spaced), simulated for `horizon` steps from the last observed state.

    **Returns:** `(forecast (N, horizon, D) (raw, unclipped), fit seconds, simulate
    seconds)`; the simulation is compiled before it is timed.
    """
    N, L, D = contexts.shape
    dt = float(t[1] - t[0])
    start = time.perf_counter()
    coef = np.stack([fit_sindy(c, dt, threshold, differentiation) for c in contexts])
    fit_seconds = time.perf_counter() - start
    ts = np.broadcast_to(t[L : L + horizon], (N, horizon)).astype(np.float32)
    args = (
        jnp.asarray(np.nan_to_num(coef)),
        jnp.asarray(contexts[:, -1], jnp.float32),
        jnp.asarray(ts),
        jnp.full((N,), t[L - 1], jnp.float32),
    )
    shapes = (N, horizon, D)
    if shapes not in _SIMULATE_SHAPES:  # compile (and run once) before timing
        jax.block_until_ready(_simulate_polynomial(*args, n_vars=D))
        _SIMULATE_SHAPES.add(shapes)
    start = time.perf_counter()
    forecast = np.array(jax.block_until_ready(_simulate_polynomial(*args, n_vars=D)))
    sim_seconds = time.perf_counter() - start
    forecast[np.isnan(coef).any(axis=(1, 2))] = np.inf  # a failed fit is a failed forecast
    return forecast, fit_seconds, sim_seconds


# ------------------------------------------------------------------------ oracle fit
class OracleFit(eqx.Module):
    """Least-squares fit of a system's own ODE to masked contexts, then a forward solve.

    `__call__(obs (N, Lmax, D), mask (N, Lmax), inits (R, P))` fits every trajectory
    from each of the R log-parameter starts (initial state started at the first
    observation), keeps the restart with the lowest context residual and returns the
    solution on the whole grid `(N, T, D)` and the fitted log-parameters `(N, P)`.
    Contexts shorter than `Lmax` are masked, so one compilation serves every length.
    """

    system: eqx.Module
    ts: jax.Array
    scale: jax.Array
    names: tuple[str, ...] = eqx.field(static=True)
    max_steps: int = eqx.field(static=True, default=80)

    def _solve(self, theta, ts):
        P = len(self.names)
        params = {n: jnp.exp(theta[i]) for i, n in enumerate(self.names)}
        term = diffrax.ODETerm(lambda t, y, p: self.system.vector_field(t, y, p))
        sol = diffrax.diffeqsolve(
            term,
            diffrax.Tsit5(),
            self.ts[0],
            ts[-1],
            None,
            theta[P:],
            args=params,
            saveat=diffrax.SaveAt(ts=ts),
            stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-8),
            max_steps=4096,
            adjoint=diffrax.ForwardMode(),
            throw=False,
        )
        ok = sol.result == diffrax.RESULTS.successful
        return jnp.where(ok, sol.ys, jnp.inf)

    def _fit_one(self, obs, mask, log_params):
        Lmax = obs.shape[0]

        def residual(theta, _):
            pred = self._solve(theta, self.ts[:Lmax])
            r = mask[:, None] * (pred - obs) / self.scale
            return jnp.where(jnp.isfinite(r), r, 1e3)

        theta0 = jnp.concatenate([log_params, obs[0]])
        solver = optx.LevenbergMarquardt(rtol=1e-6, atol=1e-8)
        sol = optx.least_squares(residual, solver, theta0, max_steps=self.max_steps, throw=False)
        loss = jnp.sum(residual(sol.value, None) ** 2)
        return sol.value, jnp.where(jnp.isfinite(loss), loss, jnp.inf)

    def __call__(self, obs, mask, inits):
        fits = jax.vmap(jax.vmap(self._fit_one, (None, None, 0)), (0, 0, None))
        thetas, losses = fits(obs, mask, inits)  # (N, R, P + D), (N, R)
        best = jnp.take_along_axis(thetas, jnp.argmin(losses, 1)[:, None, None], 1)[:, 0]
        path = jax.vmap(lambda th: self._solve(th, self.ts))(best)
        return path, best[:, : len(self.names)]


def restart_inits(system, n_restarts: int, seed: int = 0) -> np.ndarray:
    """`(n_restarts, P)` log-parameter starts: the centre of the training box, then
    uniform draws from it (fixed seed)."""
    names = system.param_names
    low = np.array([system.param_ranges[n][0] for n in names])
    high = np.array([system.param_ranges[n][1] for n in names])
    draws = np.random.default_rng(seed).uniform(low, high, size=(n_restarts - 1, len(names)))
    return np.log(np.vstack([(low + high) / 2, draws])).astype(np.float32)


def oracle_forecast(
    system: AbstractSystem,
    contexts: np.ndarray,
    t: np.ndarray,
    horizon: int,
    scale: np.ndarray,
    n_restarts: int,
    max_context: int,
    lm_steps: int = 80,
) -> tuple[np.ndarray, float, float]:
    """`oracle_fit` of `system`'s equations on contexts `(N, L, D)` (padded to
    `max_context` and masked), with `n_restarts` starts from its training box and at
    most `lm_steps` Levenberg-Marquardt steps each; `scale` `(D,)` weighs the channels
    of the residual.

    **Returns:** `(forecast (N, horizon, D) (unclipped), seconds of fit + forecast for
    the batch (compiled beforehand), compile seconds)`.
    """
    N, L, D = contexts.shape
    obs = np.zeros((N, max_context, D), np.float32)
    obs[:, :L] = contexts
    mask = np.zeros((N, max_context), np.float32)
    mask[:, :L] = 1.0
    fitter = OracleFit(
        system,
        jnp.asarray(t, jnp.float32),
        jnp.asarray(scale, jnp.float32),
        system.param_names,
        lm_steps,
    )
    args = (jnp.asarray(obs), jnp.asarray(mask), jnp.asarray(restart_inits(system, n_restarts)))
    start = time.perf_counter()
    compiled = _compiled_oracle(fitter, *args)
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    path, _ = jax.block_until_ready(compiled(fitter, *args))
    seconds = time.perf_counter() - start
    return np.asarray(path)[:, L : L + horizon], seconds, compile_seconds


_ORACLE_CACHE: dict = {}


def _compiled_oracle(fitter: OracleFit, obs, mask, inits):
    """The AOT-compiled fit for this system's equations and these shapes (cached by the
    system's name: give systems that share their equations one system, e.g. MSD for
    MSD-Zero, and they share one compilation)."""
    key = (fitter.system.name, obs.shape, inits.shape, fitter.ts.shape, fitter.max_steps)
    if key not in _ORACLE_CACHE:
        call = eqx.filter_jit(lambda f, o, m, i: f(o, m, i))
        _ORACLE_CACHE[key] = call.lower(fitter, obs, mask, inits).compile()
    return _ORACLE_CACHE[key]
