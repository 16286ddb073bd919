"""Every figure of a run: `plot_run(kind, run)` draws one of `KINDS` from a loaded run
(`warp_phys.load_run`; see `warp-phys plot`), on (a prefix of) one of its data splits
or on a data file.

What the figures know about the data (channel names and units, the time unit, the true
physical parameters) comes from the system the data set was drawn from
(`systems.get_system(dataset.name)`), or from a data file's own channel names.
"""

from .._held_rollout import held
from .._identify import source_system, state_trajectory, true_parameters
from .._refine import resolve_refine
from ..training.run import run_dataset
from ._belief import plot_belief
from ._common import check_index, to_model_units
from ._physics import plot_physics
from ._reconstruction import plot_forecast
from ._trajectory import plot_trajectory
from ._transition import plot_transition
from ._weights import plot_weights

KINDS = ("reconstruction", "weights", "belief", "trajectory", "physics", "transition")


def plot_run(
    kind: str,
    run,
    *,
    split: str = "test",
    data=None,
    index: list[int] | int | None = None,
    context: int | None = None,
    forecast: bool | None = None,
    feed: str = "data",
    gd_steps: int = 256,
    refine: int | str = 0,
):
    """Draw the figure `kind` (one of `KINDS`) of a loaded run.

    **Arguments:**

    - `kind`: `"reconstruction"`, `"weights"`, `"belief"`, `"trajectory"`, `"physics"`
      or `"transition"`.
    - `run`: a `warp_phys.Run` (`load_run`).
    - `split`: the data split to draw; `data`: a data file to draw instead (see
      `run_dataset`; only the trajectories drawn are generated).
    - `index`: trajectory index (a list for `reconstruction`, default `[0, 1, 2]`).
    - `context`: the context length L (default: the run's).
    - `forecast`: for the state plots, let theta_t run free after the context (False:
      every step observed). None (default): True for a WARP with `free_run="hold"`,
      whose state never saw an observation after its training context, so observed
      steps past it would drive theta_t out of what it was trained on; else False.
    - `feed`: see `belief_matrix`; `gd_steps`: see `plot_trajectory`.
    - `refine`: for `reconstruction` and `physics`, K >= 1 also fits a physical prior
      to the context by K Levenberg-Marquardt steps (`"auto"`: as `evaluate_run`).

    **Returns:** a matplotlib `Figure`. Bad requests are `ValueError`s.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown plot kind {kind!r}; choose from {', '.join(KINDS)}")
    wanted = [index] if isinstance(index, int) else list(index or [])
    ds, size = run_dataset(
        run, split, 1 + max(wanted or [2 if kind == "reconstruction" else 0]), data
    )
    indices, L = _check_request(kind, run, ds, size, wanted, context)
    model = run.model
    names, time_unit = _data_facts(ds)
    who = _describe(model)
    regular = ds.extras.get("t") is None or not getattr(model, "time_aware", False)
    convention = run.config.convention
    refine = resolve_refine(model, refine, convention=convention, regular=regular, context=L)
    if kind == "reconstruction":
        times = ds.extras.get("t", ds.t)  # an irregular grid: each trajectory's times (N, T)
        return plot_forecast(
            model,
            ds.y,
            L,
            t=times,
            indices=indices,
            normalizer=run.normalizer,
            channel_names=names,
            convention=run.config.convention,
            time_unit=time_unit,
            title=f"{who} on {ds.name} ({ds.split}): forecast after {L} observed steps",
            refine=refine,
        )
    if kind == "transition":
        return plot_transition(
            model,
            channel_names=names,
            title=r"Transition of the recurrence $\theta_t = A\theta_{t-1} + B\Delta x_t$, " + who,
        )
    if forecast is None:
        forecast = held(model)
    state_context = L if forecast else None
    facts = (names, time_unit, who)
    options = (feed, gd_steps, refine)
    return _state_figure(kind, run, ds, indices[0], state_context, L, facts, options)


def _state_figure(kind, run, ds, i, state_context, L, facts, options):
    """The figures of the states theta_t along trajectory `i` (weights, belief,
    trajectory, physics); `state_context`: None (every step observed) or L; `facts`:
    `(channel names, time unit, model description)`; `options`: `(feed, gd_steps,
    refine)`."""
    model, norm = run.model, run.normalizer
    names, time_unit, who = facts
    feed, gd_steps, refine = options
    y, t, tag = ds.y[i], ds.t, f"{ds.name} {ds.split} trajectory {i}, {who}"
    own_times = ds.extras.get("t")  # an irregular grid: each trajectory's times (N, T)
    if own_times is not None:
        t = own_times[i]
    if kind == "weights":
        ts = t if own_times is not None and model.time_aware else None
        thetas, _ = state_trajectory(model, to_model_units(y, norm), state_context, ts)
        return plot_weights(
            thetas,
            decoder=model.decoder,
            t=t,
            context=L,
            time_unit=time_unit,
            title=r"$\theta_t$ along " + tag,
        )
    if kind == "belief":
        return plot_belief(
            model,
            y,
            t=t,
            normalizer=norm,
            feed=feed,
            context=state_context,
            channel_names=names,
            time_unit=time_unit,
            title=f"What each state believes about {tag}",
        )
    if kind == "trajectory":
        return plot_trajectory(
            model,
            y,
            normalizer=norm,
            context=state_context,
            gd_steps=gd_steps,
            title=f"Weight-space path along {tag} vs gradient descent",
        )
    truth = {k: float(v[i]) for k, v in true_parameters(ds).items()}
    return plot_physics(
        model,
        y,
        t=t,
        normalizer=norm,
        context=state_context,
        truth=truth,
        time_unit=time_unit,
        title=r"Physical parameters read from $\theta_t$ along " + tag,
        refine=refine,
        fit_context=L,
    )


def _check_request(kind: str, run, ds, size: int, indices, context) -> tuple[list[int], int]:
    """The trajectory indices and context length `plot_run` draws, checked."""
    T = ds.y.shape[1]
    L = run.config.context if context is None else context
    if isinstance(L, bool) or not isinstance(L, int) or not 1 <= L < T:
        raise ValueError(f"context must be an int in [1, {T - 1}], got {L!r}")
    if kind == "reconstruction":
        indices = indices or list(range(min(3, size)))
    elif len(indices) > 1:
        raise ValueError(f"the {kind!r} plot shows one trajectory; got indices {indices}")
    indices = [check_index(i, size) for i in indices or [0]]
    if kind != "reconstruction" and not hasattr(run.model, "weight_trajectory"):
        raise ValueError(
            f"the {kind!r} plot needs a WARP model; this run holds a {type(run.model).__name__}"
        )
    return indices, L


def _data_facts(ds) -> tuple[list[str] | None, str]:
    """`(channel names, time unit)` of a data set: the facts of its registered system,
    else a data file's channel names; unknown names are None and time "a.u."."""
    system = source_system(ds)
    if system is None:
        return _checked_names(ds.config.get("channels"), ds), "a.u."
    names = _checked_names(system.channel_names, ds)
    if names is not None and system.channel_units is not None:
        units = system.channel_units
        names = [n if u is None else f"{n} ({u})" for n, u in zip(names, units, strict=True)]
    return names, system.time_unit or "a.u."


def _checked_names(names, ds) -> list[str] | None:
    """`names` as a list when there is one per channel of `ds`, else None."""
    return list(names) if names is not None and len(names) == ds.y.shape[2] else None


def _describe(model) -> str:
    """`"WARP (mlp root)"`, `"GRU"`, ...: the model as the figure titles name it."""
    decoder = getattr(model, "config", {}).get("decoder")
    name = type(model).__name__
    return f"{name} ({decoder} root)" if isinstance(decoder, str) and name == "WARP" else name
