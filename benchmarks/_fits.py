"""Per-trajectory anchors for `benchmarks/anchors.py`, each fitted on one trajectory's
context alone: `sindy_forecast` (PySINDy, polynomials up to degree 3, STLSQ; its field
integrated by diffrax, all trajectories in one `vmap`) and `oracle_forecast` (the
system's own `vector_field`, log-parameters and initial state fitted by
Levenberg-Marquardt through a diffrax solve from restarts in the training box).
`bounded` clips a failed forecast to a box around the data, so that it counts with a
large error instead of being dropped.
"""

import math
import time
import warnings
from functools import partial

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

SINDY_DEGREE = 3
SINDY_DIFFERENTIATION = ("finite_difference", "smoothed_finite_difference")
BOUND_FACTOR = 10.0  # forecasts are clipped to +- BOUND_FACTOR * max |y| of the training data


def bounded(forecast: np.ndarray, bound: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A forecast `(N, H, D)` clipped to `[-bound, bound]` per channel (NaN/inf -> +-bound),
    and `failed (N,)`: where any value was non-finite or outside the box."""
    forecast = np.asarray(forecast, np.float64)
    bad = ~np.isfinite(forecast) | (np.abs(forecast) > bound)
    clean = np.nan_to_num(forecast, nan=np.inf, posinf=np.inf, neginf=-np.inf)
    return np.clip(clean, -bound, bound), bad.any(axis=(1, 2))


def _solve(term, t0, ts, y0, args, rtol: float, **options):
    """`term` from `y0` at `t0`, saved at `ts` (Tsit5, adaptive, atol = rtol / 100); inf
    where the solve failed."""
    controller = diffrax.PIDController(rtol=rtol, atol=rtol / 100)
    options.update(args=args, saveat=diffrax.SaveAt(ts=ts), stepsize_controller=controller)
    sol = diffrax.diffeqsolve(term, diffrax.Tsit5(), t0, ts[-1], None, y0, throw=False, **options)
    return jnp.where(sol.result == diffrax.RESULTS.successful, sol.ys, jnp.inf)


# ---------------------------------------------------------------------------- SINDy
def polynomial_powers(n_vars: int, degree: int) -> np.ndarray:
    """Exponents `(n_features, n_vars)` of PySINDy's `PolynomialLibrary(degree)` in its
    feature order (graded, then lexicographic from the first variable)."""

    def compositions(total: int, n: int) -> list[tuple[int, ...]]:
        if n == 1:
            return [(total,)]
        return [(k, *rest) for k in range(total, -1, -1) for rest in compositions(total - k, n - 1)]

    return np.array([c for total in range(degree + 1) for c in compositions(total, n_vars)], int)


def _features(y, powers: np.ndarray):
    factors = lambda row: [jax.lax.integer_pow(y[i], int(p)) for i, p in enumerate(row) if p]
    return jnp.stack([math.prod(factors(row), start=jnp.ones((), y.dtype)) for row in powers])


def fit_sindy(context: np.ndarray, dt: float, threshold: float, differentiation: str):
    """PySINDy coefficients `(D, n_features)` for one context `(L, D)` (NaN: it failed)."""
    import pysindy as ps

    methods = {"finite_difference": ps.FiniteDifference}
    methods["smoothed_finite_difference"] = ps.SmoothedFiniteDifference
    library = ps.PolynomialLibrary(degree=SINDY_DEGREE)
    options = dict(optimizer=ps.STLSQ(threshold=threshold), feature_library=library)
    model = ps.SINDy(**options, differentiation_method=methods[differentiation]())
    expected = polynomial_powers(context.shape[1], SINDY_DEGREE)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(np.asarray(context, np.float64), t=dt)
        if not np.array_equal(model.feature_library.powers_, expected):
            raise RuntimeError("unexpected PySINDy feature order")
        return np.asarray(model.coefficients(), np.float32)
    except (ValueError, np.linalg.LinAlgError, FloatingPointError):
        return np.full((context.shape[1], len(expected)), np.nan, np.float32)


_SIMULATE_SHAPES: set = set()  # compiled and run once already


@partial(jax.jit, static_argnames=("n_vars",))
def _simulate_polynomial(coef, x0, ts, t_start, *, n_vars: int):
    """Integrates `y' = coef @ features(y)` from `x0` at `t_start` to the times `ts`
    (one trajectory per row of `coef`, `x0`, `ts`, `t_start`); failures give inf."""
    powers = polynomial_powers(n_vars, SINDY_DEGREE)
    term = diffrax.ODETerm(lambda t, y, c: c @ _features(y, powers))
    one = lambda c, y0, ts_, t0: _solve(term, t0, ts_, y0, c, 1e-5, max_steps=4096)
    return jax.vmap(one)(coef, x0, ts, t_start)


def sindy_forecast(contexts, t, horizon: int, threshold: float, differentiation: str):
    """SINDy fitted on each context `(N, L, D)` at times `t` `(T,)` (evenly spaced), run
    `horizon` steps from the last observed state: `(forecast (N, horizon, D), fit seconds,
    simulate seconds)`, the simulation compiled before it is timed."""
    N, L, D = contexts.shape
    start, dt = time.perf_counter(), float(t[1] - t[0])
    coef = np.stack([fit_sindy(c, dt, threshold, differentiation) for c in contexts])
    fit_seconds = time.perf_counter() - start
    ts = np.broadcast_to(t[L : L + horizon], (N, horizon)).astype(np.float32)
    x0, t0 = jnp.asarray(contexts[:, -1], jnp.float32), jnp.full((N,), t[L - 1], jnp.float32)
    args = (jnp.asarray(np.nan_to_num(coef)), x0, jnp.asarray(ts), t0)
    if (N, horizon, D) not in _SIMULATE_SHAPES:  # compile (and run once) before timing
        jax.block_until_ready(_simulate_polynomial(*args, n_vars=D))
        _SIMULATE_SHAPES.add((N, horizon, D))
    start = time.perf_counter()
    forecast = np.array(jax.block_until_ready(_simulate_polynomial(*args, n_vars=D)))
    sim_seconds = time.perf_counter() - start
    forecast[np.isnan(coef).any(axis=(1, 2))] = np.inf  # a failed fit is a failed forecast
    return forecast, fit_seconds, sim_seconds


# ------------------------------------------------------------------------ oracle fit
class OracleFit(eqx.Module):
    """`__call__(obs (N, Lmax, D), mask (N, Lmax), inits (R, P))`: a system's own ODE fitted
    to each masked context (so one compilation serves every length) from the R
    log-parameter starts, the initial state from the first observation; the restart of
    lowest residual solved on the whole grid `(N, T, D)`, and its log-parameters `(N, P)`."""

    system: eqx.Module
    ts: jax.Array
    scale: jax.Array
    names: tuple[str, ...] = eqx.field(static=True)
    max_steps: int = eqx.field(static=True, default=80)

    def _solve(self, theta, ts):
        params = {n: jnp.exp(theta[i]) for i, n in enumerate(self.names)}
        term = diffrax.ODETerm(lambda t, y, p: self.system.vector_field(t, y, p))
        y0, adjoint = theta[len(self.names) :], diffrax.ForwardMode()
        return _solve(term, self.ts[0], ts, y0, params, 1e-6, max_steps=4096, adjoint=adjoint)

    def _fit_one(self, obs, mask, log_params):
        def residual(theta, _):
            r = mask[:, None] * (self._solve(theta, self.ts[: obs.shape[0]]) - obs) / self.scale
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


_ORACLE_CACHE: dict = {}  # compiled fits by equations (system name: MSD-Zero's are MSD's), shapes


def oracle_forecast(system, contexts, horizon, t, scale, restarts, max_context, lm_steps=80):
    """`OracleFit` of `system`'s equations on contexts `(N, L, D)` at times `t` (padded to
    `max_context`) from `restarts` starts (the training box's centre, then uniform draws),
    `lm_steps` LM steps at most, channels weighed by `scale` `(D,)`: `(forecast (N,
    horizon, D), seconds of the compiled fit and forecast, compile seconds)`."""
    N, L, D = contexts.shape
    obs, mask = np.zeros((N, max_context, D), np.float32), np.zeros((N, max_context), np.float32)
    obs[:, :L], mask[:, :L] = contexts, 1.0
    t, scale = jnp.asarray(t, jnp.float32), jnp.asarray(scale, jnp.float32)
    fitter = OracleFit(system, t, scale, system.param_names, lm_steps)
    low, high = np.array([system.param_ranges[n] for n in system.param_names]).T
    draws = np.random.default_rng(0).uniform(low, high, size=(restarts - 1, len(low)))
    inits = np.log(np.vstack([(low + high) / 2, draws])).astype(np.float32)
    args = (jnp.asarray(obs), jnp.asarray(mask), jnp.asarray(inits))
    key, start = (system.name, obs.shape, inits.shape, t.shape, lm_steps), time.perf_counter()
    if key not in _ORACLE_CACHE:
        call = eqx.filter_jit(lambda f, o, m, i: f(o, m, i))
        _ORACLE_CACHE[key] = call.lower(fitter, *args).compile()
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    path, _ = jax.block_until_ready(_ORACLE_CACHE[key](fitter, *args))
    seconds = time.perf_counter() - start
    return np.asarray(path)[:, L : L + horizon], seconds, compile_seconds
