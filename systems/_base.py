"""`AbstractSystem`: what a dynamical system must provide, and how it is sampled and solved."""

import abc
import dataclasses
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from equinox import AbstractVar
from jaxtyping import Array, Float, PRNGKeyArray, Scalar

from ._integrate import compiled_solver
from ._ranges import MIN_OOD_ACCEPTANCE, Range, box, candidates_for, check_range, outside_share

SPLITS = ("train", "val", "test", "ood")
"""The data splits. `val`/`test` share the training ranges; `ood` uses `ood_ranges`."""

OOD_MODES = ("exclude_train", "wide")
Params = dict[str, Float[Array, "..."]]


class AbstractSystem(eqx.Module):
    """A parametrised ODE `dy/dt = f(t, y, params)` together with how its data sets are drawn.

    A new system provides the abstract attributes below and `vector_field`; everything else
    (sampling per split, integration with diffrax, post-processing) has a default.

    - `name`: registry name, also stored in the data set.
    - `state_size`: dimension `D` of the state `y`.
    - `param_ranges`: `{name: (low, high)}` uniform ranges for train / val / test.
    - `ood_ranges`: wider ranges for the `ood` split (`None`: the system has no OOD split).
    - `y0_ranges`: per state component `(low, high)` of the uniform initial condition
      (`low == high` means fixed); `None` when `sample_y0` is overridden.
    - `split_sizes`: default number of trajectories per split.
    - `t_end`, `n_steps`: the time grid is `n_steps` evenly spaced points on `[0, t_end]`.
    - `irregular`: 0 keeps that grid; k >= 2 samples every trajectory at its own
      `n_steps` times: t = 0 and `n_steps - 1` distinct random later points of a grid k
      times finer, sorted (so steps vary from 1/k to many nominal intervals). The
      times go to the data set's `extras["t"]` `(N, T)`; its `t` is the nominal grid.
    - `ood_mode`: `"exclude_train"` draws OOD parameters uniformly from `ood_ranges`
      and rejects draws inside the training box (every OOD trajectory has at least one
      parameter outside its training range); `"wide"` keeps every draw from `ood_ranges`
      (the reference's test distribution).
    - `normalise`: min-max map the data to `[-1, 1]` with statistics of the train split.
    - `rtol`, `atol`, `max_steps`: settings of the adaptive solve (float32 state; the
      small `atol` matters for LV, whose prey population gets close to 0).

    Facts a system may declare, for figures and reports (class attributes; None means
    unknown, as for a `from_vector_field` system):

    - `channel_names`: a name per data channel, e.g. `("position x", "velocity v")`.
    - `channel_units`: the unit of each channel (None where unknown).
    - `time_unit`: the unit of `t`.
    - `physical_parameters(params)`: a trajectory's true parameters in the quantities
      physical decoders read from theta_t (default: the parameters themselves).

    The compiled solve is cached per class and per value of every field except the
    sampling ones (ranges, counts, grid, ...); a subclass lists its own fields that do
    not affect `vector_field` in `extra_sampling_fields`.
    """

    name: AbstractVar[str]
    state_size: AbstractVar[int]
    param_ranges: AbstractVar[dict[str, Range]]
    ood_ranges: AbstractVar[dict[str, Range] | None]
    y0_ranges: AbstractVar[tuple[Range, ...] | None]
    split_sizes: AbstractVar[dict[str, int]]
    t_end: float = 1.0
    n_steps: int = 256
    irregular: int = 0
    ood_mode: str = "exclude_train"
    normalise: bool = False
    rtol: float = 1e-7
    atol: float = 1e-9
    max_steps: int = 16_384
    extra_sampling_fields: ClassVar[tuple[str, ...]] = ()
    # facts for figures and reports (not fields: they change no data)
    channel_names: ClassVar[tuple[str, ...] | None] = None
    channel_units: ClassVar[tuple[str | None, ...] | None] = None
    time_unit: ClassVar[str | None] = None

    @abc.abstractmethod
    def vector_field(
        self, t: Scalar, y: Float[Array, " data"], params: Params
    ) -> Float[Array, " data"]:
        """The right-hand side `dy/dt`.

        **Arguments:**

        - `t`: scalar time (physical units of the system, default `[0, 1]`).
        - `y`: state of shape `(state_size,)`.
        - `params`: dict `{name: scalar}` with one entry per parameter.

        **Returns:** the time derivative, shape `(state_size,)`.
        """

    def __check_init__(self):
        where = f"system {self.name!r}"
        if not isinstance(self.state_size, int) or self.state_size < 1:
            raise ValueError(f"{where}: state_size must be a positive int, got {self.state_size!r}")
        for p, r in self.param_ranges.items():
            check_range(f"{where}, parameter {p!r}", r)
        if self.ood_ranges is not None:
            if set(self.ood_ranges) != set(self.param_ranges):
                raise ValueError(
                    f"{where}: ood_ranges names {sorted(self.ood_ranges)} differ from "
                    f"param_ranges names {sorted(self.param_ranges)}"
                )
            for p, r in self.ood_ranges.items():
                check_range(f"{where}, OOD parameter {p!r}", r)
        if self.y0_ranges is not None:
            if len(self.y0_ranges) != self.state_size:
                raise ValueError(
                    f"{where}: y0_ranges has {len(self.y0_ranges)} entries, "
                    f"expected state_size={self.state_size}"
                )
            for i, r in enumerate(self.y0_ranges):
                check_range(f"{where}, y0[{i}]", r)
        for split, n in self.split_sizes.items():
            if split not in SPLITS:
                raise ValueError(f"{where}: unknown split {split!r} in split_sizes; use {SPLITS}")
            if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
                raise ValueError(f"{where}: split_sizes[{split!r}] must be a positive int")
        if self.normalise and "train" not in self.split_sizes:
            raise ValueError(f"{where}: normalise=True needs a default train size in split_sizes")
        if isinstance(self.n_steps, bool) or not isinstance(self.n_steps, int) or self.n_steps < 2:
            raise ValueError(f"{where}: n_steps must be an int >= 2, got {self.n_steps!r}")
        if isinstance(self.irregular, bool) or not isinstance(self.irregular, int) or (
            self.irregular < 0 or self.irregular == 1
        ):
            raise ValueError(f"{where}: irregular must be 0 or an int >= 2, got {self.irregular!r}")
        if not (math.isfinite(self.t_end) and self.t_end > 0):
            raise ValueError(f"{where}: t_end must be positive and finite, got {self.t_end!r}")
        if self.ood_mode not in OOD_MODES:
            raise ValueError(f"{where}: ood_mode must be one of {OOD_MODES}, got {self.ood_mode!r}")
        if not (self.rtol > 0 and self.atol > 0):
            raise ValueError(f"{where}: rtol and atol must be positive")

    @property
    def param_names(self) -> tuple[str, ...]:
        """Parameter names, in the order of `param_ranges`."""
        return tuple(self.param_ranges)

    def physical_parameters(self, params: Mapping[str, Any]) -> dict[str, float]:
        """The true values of one trajectory's parameters, in the quantities that the
        physical decoders read from theta_t (their `physical_parameters`).

        **Arguments:**

        - `params`: that trajectory's parameters `{name: scalar}` (a `Dataset.params`
          row).

        **Returns:** `{name: float}`; by default the parameters themselves, so a custom
        prior whose parameter names match the system's is compared directly.
        """
        return {k: float(np.asarray(v)) for k, v in params.items()}

    def time_grid(self) -> Float[Array, " T"]:
        """**Returns:** `n_steps` evenly spaced times on `[0, t_end]`, shape `(n_steps,)`."""
        return jnp.linspace(0.0, self.t_end, self.n_steps, dtype=jnp.float32)

    def solve_grid(self) -> Float[Array, " M"]:
        """The times the ODE is solved at: `time_grid()`, or for `irregular = k` the
        `k (n_steps - 1) + 1` points of the finer grid the samples are drawn from."""
        if not self.irregular:
            return self.time_grid()
        points = self.irregular * (self.n_steps - 1) + 1
        return jnp.linspace(0.0, self.t_end, points, dtype=jnp.float32)

    def replace(self, **overrides: Any) -> "AbstractSystem":
        """A copy with fields or parameter ranges replaced.

        A parameter name sets its training range (`k=(4, 8)`, or `c=0.0` to fix it).
        The dict fields `param_ranges`, `ood_ranges` and `split_sizes` are merged
        into the current ones. Unknown names or invalid values raise `ValueError`.
        """
        fields = {f.name for f in dataclasses.fields(self) if f.init}
        unknown = sorted(set(overrides) - fields - set(self.param_ranges))
        if unknown:
            raise ValueError(
                f"unknown override(s) {unknown} for system {self.name!r}; parameters: "
                f"{list(self.param_ranges)}, options: {sorted(fields)}"
            )
        changes = dict(overrides)
        ranges = dict(self.param_ranges)
        ranges.update(changes.pop("param_ranges", {}))
        for p in self.param_ranges:
            if p in changes:
                ranges[p] = check_range(f"override of parameter {p!r}", changes.pop(p))
        changes["param_ranges"] = ranges
        if self.ood_ranges is not None and changes.get("ood_ranges") is not None:
            changes["ood_ranges"] = {**self.ood_ranges, **changes["ood_ranges"]}
        if "split_sizes" in changes:
            changes["split_sizes"] = {**self.split_sizes, **changes["split_sizes"]}
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ sampling
    def sample_params(self, key: PRNGKeyArray, split: str) -> dict[str, Scalar]:
        """Draws one parameter set for `split` (uniform per parameter, see the class doc)."""
        names = self.param_names
        if not names:
            return {}
        if split != "ood":
            low, high = box(self.param_ranges, names)
            values = jr.uniform(key, (len(names),), minval=low, maxval=high)
        else:
            low, high = box(self.ood_ranges, names)
            draw = lambda k: jr.uniform(k, (len(names),), minval=low, maxval=high)
            if self.ood_mode == "wide":
                values = draw(key)
            else:
                # Exact rejection sampling, vectorised: the first of K candidates outside
                # the training box (K makes "no candidate outside" a < 1e-12 event).
                tlow, thigh = box(self.param_ranges, names)
                shape = (self.ood_candidates(), len(names))
                cands = jr.uniform(key, shape, minval=low, maxval=high)
                outside = ~jnp.all((cands >= tlow) & (cands <= thigh), axis=1)
                values = cands[jnp.argmax(outside)]
        return {n: values[i] for i, n in enumerate(names)}

    def sample_y0(self, key: PRNGKeyArray, params: dict[str, Scalar]) -> Float[Array, " data"]:
        """Draws one initial condition, shape `(state_size,)`, uniform in `y0_ranges`."""
        del params
        low = jnp.array([r[0] for r in self.y0_ranges], jnp.float32)
        high = jnp.array([r[1] for r in self.y0_ranges], jnp.float32)
        return jr.uniform(key, (self.state_size,), minval=low, maxval=high)

    def ood_acceptance(self) -> float:
        """Fraction of `ood_ranges` volume outside the training box (1 for `"wide"`)."""
        if self.ood_mode == "wide" or not self.param_ranges:
            return 1.0
        return outside_share(self.param_ranges, self.ood_ranges)

    def ood_candidates(self) -> int:
        """Candidates per OOD draw: a power of two K with `(1 - acceptance)^K < 1e-12`."""
        return candidates_for(self.ood_acceptance())

    def check_split(self, split: str) -> None:
        """Raises `ValueError` if `split` is unknown or unavailable for this system."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        if split == "ood":
            if self.ood_ranges is None:
                raise ValueError(f"system {self.name!r} has no OOD split (ood_ranges is None)")
            if self.ood_acceptance() < MIN_OOD_ACCEPTANCE:
                raise ValueError(
                    f"system {self.name!r}: ood_ranges lie (almost) inside the training ranges, "
                    "so no OOD parameters can be drawn; widen ood_ranges or use ood_mode='wide'"
                )

    # --------------------------------------------------------------- integration
    def integrate(
        self, ts: Float[Array, " T"], y0: Float[Array, "N data"], params: Params
    ) -> Float[Array, "N T data"]:
        """Solves every trajectory with diffrax (Tsit5, PID controller, `SaveAt(ts=ts)`).

        One `jax.vmap` over trajectories of `diffrax.diffeqsolve`, jit-compiled once per
        system dynamics and shape. Failed solves come back as NaN.

        **Arguments:**

        - `ts`: save times, shape `(T,)`; the solve runs from `ts[0]` to `ts[-1]`.
        - `y0`: initial conditions, shape `(N, state_size)`.
        - `params`: dict `{name: (N,) array}`.

        **Returns:** states of shape `(N, T, state_size)`.
        """
        return compiled_solver(self)(ts, y0, params)

    def postprocess(
        self, keys: PRNGKeyArray, t: Float[Array, " T"], y: Float[Array, "N T data"]
    ) -> tuple[Float[Array, "N T data"], dict[str, Array]]:
        """Turns raw trajectories into the data set's `y` (default: unchanged).

        **Arguments:** per-trajectory keys `(N,)`, times `(T,)`, raw states `(N, T, D)`.

        **Returns:** `(y, extras)`: the data `(N, T, D)` and extra per-trajectory arrays
        (e.g. `"inputs"`), each with leading dimension `N`.
        """
        del keys, t
        return y, {}
