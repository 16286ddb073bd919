"""WARP: a linear recurrence over the flattened weights of a root decoder."""

import json
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._arguments import check_arguments, check_decoder, floats, optional_config
from ._drive import FeatureDrive, make_drive
from ._hypernetwork import Hypernetwork
from ._interface import AbstractSequenceModel, check_sequence, check_times, register_model_class
from ._recurrence import sequential_states
from ._transition import AbstractTransition
from ._transitions import make_transition
from .decoders import AbstractDecoder, explicit_options, make_decoder

Mode = Literal["auto", "parallel", "sequential"]


@register_model_class
class WARP(AbstractSequenceModel):
    """Weight-space Adaptive Recurrent Prediction (arXiv 2506.01153).

    The hidden state theta_t is the flat parameter vector of a root decoder:

        theta_0 = phi(x_0),   theta_t = A theta_{t-1} + B (x_t - x_{t-1}),
        x_hat_{t+1} = root(tau_{t+1}, x_t; theta_t),

    with `A` initialised to the identity, `B` to zero, and `tau_t = t * tau_step`
    the normalised time (`tau_step = 1 / (seq_len - 1)`, so a training sequence of
    `seq_len` steps spans tau in [0, 1]). A is `model.transition`, dense (the paper's
    D x D matrix, also readable as `model.A`) or structured (see
    `warp_phys._transition` for the kinds, their costs and memory).

    Irregular time grids: with `transition="continuous"` every method that takes a
    sequence also takes its time stamps `ts` `(T,)`, counted in sampling intervals,
    c_t = (ts_t - ts_0) / time_step: tau_t = c_t * tau_step, and the step from t - 1 to t
    spans h_t = c_t - c_{t-1} (see `ContinuousTransition`; without `ts`, h_t = 1).

    **Arguments:**

    - `data_size`: channels of one observation x_t.
    - `decoder`: a registered decoder name (see `list_decoders()`) or an
      `AbstractDecoder` instance.
    - `root_width`, `root_depth`: the decoder's `width`, `depth` (for decoders that
      have them, `takes_size`; ignored by the others).
    - `decoder_options`: further keyword options of the decoder.
    - `data_scale`, `data_shift`: the data normalisation `data = (raw - shift) / scale`,
      `(data_size,)` each in raw units, for decoders in physical units (e.g.
      `damped_oscillator`); see `warp_phys.decoders.make_decoder`.
    - `hyper_width`, `hyper_depth`: the hypernetwork's hidden MLP (`hyper_depth=0`
      gives a linear map theta_0 = W x_0 + b).
    - `seq_len`: the training sequence length that defines tau.
    - `transition`: the structure of A: `"dense"` (default), `"diagonal"`, `"lowrank"`
      (A = I + U V^T) or `"block"` (one dense block per parameter tensor of the root).
    - `transition_rank`: r of `"lowrank"` (default 8); only for that kind.
    - `transition_init`: A at the start: `"identity"` (default) or `"rotation"` (dense
      only: random 2 x 2 rotations, a clock; `warp_phys._transitions.rotation_matrix`).
    - `time_step`: the nominal sampling interval, in the units of the `ts` you will
      pass (default 1: `ts` counts steps); only for `transition="continuous"`.
    - `drive_features`: 0 (default) for the difference drive B (x_t - x_{t-1}); F > 0
      for the feature drive B e(x_{t-1}, x_t) / (seq_len - 1), e a small MLP with F
      outputs and B of shape `(D_theta, F)`, so the state accumulates statistics of
      the whole sequence (see `warp_phys._drive`; not with `"continuous"`).
    - `drive_scale_free`: e reads step pairs divided by their norm (amplitude-free).
    - `free_run`: `"advance"` (the paper's: a fed-back prediction drives theta like an
      observation) or `"hold"` (theta advances on observations only, so a physical
      prior's parameters are fixed after a context; see `warp_phys._held_rollout`).
    - `output_size`: channels the root predicts if not the input's (e.g. class logits
      of `warp_phys.tasks`); the root then cannot read the previous observation
      (`decoder_options={"input_prev": False}`): teacher-forced use only.
    - `key`: a JAX PRNG key.
    """

    transition: AbstractTransition
    B: Float[Array, "D_theta drive"]
    hypernetwork: Hypernetwork
    drive: FeatureDrive | None
    decoder: AbstractDecoder
    data_size: int = eqx.field(static=True)
    tau_step: float = eqx.field(static=True)
    time_step: float = eqx.field(static=True)
    free_run: str = eqx.field(static=True)
    config_json: str = eqx.field(static=True)

    def __init__(
        self,
        data_size: int,
        *,
        decoder: str | AbstractDecoder = "mlp",
        root_width: int | None = None,
        root_depth: int | None = None,
        decoder_options: dict | None = None,
        hyper_width: int = 32,
        hyper_depth: int = 1,
        seq_len: int = 256,
        transition: str = "dense",
        transition_rank: int | None = None,
        transition_init: str = "identity",
        time_step: float | None = None,
        data_scale: list[float] | None = None,
        data_shift: list[float] | None = None,
        output_size: int | None = None,
        drive_features: int = 0,
        drive_scale_free: bool = False,
        free_run: Literal["advance", "hold"] = "advance",
        key: PRNGKeyArray,
    ):
        check_arguments(
            data_size, seq_len, transition, transition_rank, time_step, transition_init, free_run
        )
        out_size = int(data_size if output_size is None else output_size)
        options = dict(decoder_options or {})
        data_scale, data_shift = floats(data_scale), floats(data_shift)
        if isinstance(decoder, AbstractDecoder):
            given = (root_width, root_depth, data_scale, data_shift)
            if options or any(v is not None for v in given):
                raise ValueError("decoder options cannot be given with a decoder instance")
            decoder_name = f"<{type(decoder).__name__} instance>"
        else:  # a default that changed is recorded explicitly (decoders/_defaults.py)
            decoder_name, options = decoder, explicit_options(decoder, options)
            decoder = make_decoder(
                decoder, out_size, seq_len=seq_len, root_width=root_width,
                root_depth=root_depth, data_scale=data_scale, data_shift=data_shift, **options,
            )
        check_decoder(decoder, data_size, out_size)
        root_key, hyper_key = jax.random.split(key)
        theta_init = decoder.flat_init(root_key)
        D = theta_init.shape[0]
        sizes = tuple(s.size for s in jax.tree.leaves(decoder.param_shapes()) if s.size)
        self.transition = make_transition(
            transition,
            sizes,
            rank=transition_rank,
            key=jax.random.fold_in(key, 2),  # A's own (low-rank or rotation, never both)
            dtype=theta_init.dtype,
            init=transition_init,
        )
        self.drive = make_drive(
            drive_features, data_size, int(seq_len), transition, scale_free=drive_scale_free,
            data_scale=data_scale, data_shift=data_shift, key=jax.random.fold_in(key, 3),
        )  # the drive's own key (fold_in 3), as A's: other keys unchanged
        self.B = jnp.zeros((D, getattr(self.drive, "size", data_size)), dtype=theta_init.dtype)
        self.hypernetwork = Hypernetwork(
            data_size, theta_init, width=hyper_width, depth=hyper_depth, key=hyper_key
        )
        self.decoder = decoder
        self.data_size = int(data_size)
        self.tau_step = 1.0 / (int(seq_len) - 1)
        self.time_step = 1.0 if time_step is None else float(time_step)
        self.free_run = free_run
        config = dict(
            data_size=int(data_size), decoder=decoder_name, decoder_options=options,
            root_width=root_width, root_depth=root_depth, data_scale=data_scale,
            data_shift=data_shift, hyper_width=hyper_width, hyper_depth=hyper_depth,
            seq_len=int(seq_len),
        )
        optional = (time_step, output_size, drive_features, transition_init)
        config.update(optional_config(self.transition, *optional, drive_scale_free, free_run))
        self.config_json = json.dumps(config, sort_keys=True)

    @property
    def config(self) -> dict:
        """The constructor arguments (without `key`) that rebuild this architecture."""
        return json.loads(self.config_json)

    @property
    def A(self) -> Float[Array, "D_theta D_theta"]:
        """The dense transition matrix `(D_theta, D_theta)` (`transition="dense"` only;
        a structured A is `model.transition`, with `as_matrix()` for small D)."""
        if self.transition.kind != "dense":
            raise AttributeError(
                f"model.A is stored only for transition='dense'; this model has transition="
                f"{self.transition.kind!r}: use model.transition (A @ x, as_matrix())"
            )
        return self.transition.matrix

    @property
    def theta_size(self) -> int:
        """D_theta, the size of the weight-space state."""
        return self.B.shape[0]

    @property
    def probabilistic(self) -> bool:
        """Whether predictions come as `(mean, std)`."""
        return self.decoder.probabilistic

    @property
    def time_aware(self) -> bool:
        """Whether the model takes time stamps `ts` (irregular grids)."""
        return self.transition.time_aware

    def clock(self, ts: Float[Array, " T"]) -> Float[Array, " T"]:
        """Time stamps `ts` `(T,)` as (fractional) step indices (ts - ts_0) / time_step,
        the `t` of `decode`; a clear error unless the model is time-aware and `ts` is
        1-D, finite and strictly increasing (checked when concrete)."""
        if not self.time_aware:
            raise ValueError(
                f"time stamps ts need a time-aware model (WARP(transition='continuous')); "
                f"this one has transition={self.transition.kind!r}"
            )
        ts = check_times(ts, self.B.dtype)
        return (ts - ts[0]) / self.time_step

    def tau(self, t: Array) -> Array:
        """Normalised time of integer step(s) `t`."""
        return jnp.asarray(t, dtype=self.B.dtype) * self.tau_step

    def initial_state(self, x0: Float[Array, " data"]) -> Float[Array, " D_theta"]:
        """theta_0 = phi(x_0), shape `(D_theta,)`."""
        return self.hypernetwork(x0)

    def empty_state(self, x0: Float[Array, " data"]) -> Float[Array, " D_theta"]:
        """theta_0 = phi(x_0) as well: the reference convention starts from it and its
        step 0 adds B (x_0 - x_0) = 0, giving A theta_0 (a feature drive: B e(x_0, x_0))."""
        return self.hypernetwork(x0)

    def advance(
        self, state: Float[Array, " D_theta"], u: Float[Array, " data"],
        u_prev: Float[Array, " data"], h: Array | None = None,
    ) -> Float[Array, " D_theta"]:
        """theta <- A theta + B drive_input(u, u_prev) (A(h) over `h` intervals if time-aware)."""
        return self.step(state, self.drive_input(u, u_prev), h)

    def drive_input(
        self, u: Float[Array, " data"], u_prev: Float[Array, " data"]
    ) -> Float[Array, " drive"]:
        """What B multiplies when `u` is consumed after `u_prev`: u - u_prev (the
        difference drive) or e(u_prev, u) / (seq_len - 1) (`drive_features` > 0)."""
        return u - u_prev if self.drive is None else self.drive(u, u_prev)

    def encode(self, context: Float[Array, "L data"], mode: Mode = "auto", ts=None):
        """theta_{L-1} after the observed `context` (`(L, data_size)`, times `ts`
        `(L,)` for a time-aware model), in `mode`."""
        return self.weight_trajectory(context, mode, ts)[-1]

    def step(
        self, theta: Float[Array, " D_theta"], du: Float[Array, " data"], h: Array | None = None
    ) -> Float[Array, " D_theta"]:
        """One recurrence step: A theta + B du, `du` of shape `(B.shape[1],)` (the input
        difference, or the feature drive's output); cost: the transition's `step_cost`."""
        return self.transition.advance(theta, self.B @ du, h)

    def decode(self, theta: Float[Array, " D_theta"], t: Array, x_prev: Float[Array, " data"]):
        """Root network with weights `theta` at step `t` (an integer or float index),
        fed the previous observation `x_prev`. Returns mean or `(mean, std)`."""
        return self.decoder.decode(theta, self.tau(t), x_prev)

    def weight_trajectory(
        self, xs: Float[Array, "T data"], mode: Mode = "auto", ts=None
    ) -> Float[Array, "T D_theta"]:
        """theta_0..theta_{T-1} driven by the observed inputs `xs` of shape `(T, data_size)`
        (observed at times `ts` `(T,)` for a time-aware model; default: a regular grid).

        `mode="sequential"` is a `lax.scan`; `mode="parallel"` unrolls the recurrence
        into kernels precomputed once per batch and a causal convolution (see
        `warp_phys._recurrence` for the cost model; a diagonal A uses an associative
        scan, a low-rank one an r-dim recurrence); `mode="auto"` picks parallel when
        4 T F <= D_theta for a dense A, F = B.shape[1] (the transition's `preferred_mode`).
        All agree to float32 rounding.
        """
        xs = check_sequence(xs, self.data_size, "xs")
        steps = None if ts is None else jnp.diff(self._clock_of(ts, xs))
        # the feature drive enters every mode as pseudo-inputs whose differences it is
        inputs = xs if self.drive is None else self.drive.pseudo_inputs(xs)
        if mode == "auto":
            mode = self.transition.preferred_mode(xs.shape[0], self.B.shape[1])
        if mode == "sequential":
            theta0 = self.initial_state(xs[0])
            return sequential_states(self.transition, self.B, theta0, inputs, steps)
        if mode == "parallel":
            hyper = self.hypernetwork
            timed = {} if steps is None else {"steps": steps}
            return self.transition.parallel_states(
                self.B, hyper.weight, hyper.bias, hyper.features(xs[0]), inputs, **timed
            )
        raise ValueError(f"mode must be 'auto', 'parallel' or 'sequential', got {mode!r}")

    def __call__(self, xs: Float[Array, "T data"], mode: Mode = "auto", ts=None):
        """Teacher-forced one-step predictions of `xs[1:]` (observed at times `ts` `(T,)`
        for a time-aware model).

        The prediction of x_{t+1} is decoded from theta_t (which has seen x_0..x_t) at
        tau_{t+1} with x_t as the previous observation, so no target leaks into its own
        prediction. Returns the mean of shape `(T-1, data_size)`, or `(mean, std)`.
        """
        thetas = self.weight_trajectory(xs, mode, ts)
        steps = jnp.arange(1, xs.shape[0]) if ts is None else self._clock_of(ts, xs)[1:]
        return jax.vmap(self.decode)(thetas[:-1], steps, xs[:-1])

    def _clock_of(self, ts, xs) -> Array:
        clock = self.clock(ts)
        if clock.shape[0] != xs.shape[0]:
            raise ValueError(f"ts has {clock.shape[0]} time stamps for {xs.shape[0]} steps")
        return clock
