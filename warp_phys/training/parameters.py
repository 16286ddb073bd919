"""The physical parameters a trained run identifies, per trajectory, next to the truth
(`warp-phys params`)."""

import numpy as np

from .._identify import parameter_summary, parameter_units, true_parameters
from .._refine import refine_parameters, resolve_refine
from .evaluation import read_input, warn_past_training_length, warn_untrained_context
from .run import Run, load_dataset


def parameter_table(
    run: Run,
    *,
    data=None,
    split: str | None = None,
    n: int | None = None,
    context: int | None = None,
    refine: int | str = 0,
) -> dict:
    """What the run's prior identifies on each trajectory from its first `context` steps.

    **Arguments:**

    - `run`: a loaded `Run` whose WARP model has a physical prior (else `ValueError`).
    - `data`: a data file (any format `systems.load` reads; channels matched to the run);
      its `params/<name>` arrays are the truth. Default: the split below.
    - `split`: the split to read without `data` (default: `test`, or `val` for a run
      trained on a file); `n`: its first `n` trajectories.
    - `context`: L (default: the run's), fewer than the trajectories' steps.
    - `refine`: K > 0 also fits the parameters to each context by K Levenberg-Marquardt
      steps from the read-out (`refine_parameters`), reported as `"refined"`; `"auto"`:
      `DEFAULT_REFINE_STEPS` on a regular grid in the clean convention, else none.

    **Returns:** a JSON-able dict: `source`, `context`, `steps` (T), `units`
    (`parameter -> unit`), `ids` (one per trajectory) and `parameters`: `component ->
    {"value", "std", "range"[, "refined", "true"]}`, lists of N floats: the value read at
    the end of the context, its standard deviation and max - min over the forecast of the remaining
    T - L steps (see `parameter_summary`), and the true value where the data know it.
    """
    if not hasattr(run.model, "weight_trajectory"):
        raise ValueError(
            f"parameters are read from WARP's weight-space states; this run holds a "
            f"{type(run.model).__name__}"
        )
    units = parameter_units(run.model.decoder)  # a ValueError for a decoder without physics
    if data is not None:
        dataset, y = read_input(run, data)
        source = str(data)
    else:
        split = split or ("val" if run.config.data is not None else "test")
        dataset = load_dataset(run.config, split, n)
        y, source = dataset.y, split
    context = run.config.context if context is None else context
    warn_untrained_context(run, context)
    warn_past_training_length(run.model, y.shape[1], f"the {source} data")
    summary = parameter_summary(run.model, run.normalizer.apply(y), context)
    truth = true_parameters(dataset)
    refined = {}
    regular = getattr(dataset, "extras", {}).get("t") is None
    convention = run.config.convention
    refine = resolve_refine(
        run.model, refine, convention=convention, regular=regular, context=context
    )
    if refine:
        normalised = np.asarray(run.normalizer.apply(y))[:, :context]
        refined = refine_parameters(run.model, normalised, steps=int(refine))
    parameters = {}
    for name, stats in summary.items():
        row = {k: np.asarray(v, float).tolist() for k, v in stats.items()}
        if name in refined:
            row["refined"] = np.asarray(refined[name], float).reshape(len(y)).tolist()
        if name in truth:
            row["true"] = np.asarray(truth[name], float).tolist()
        parameters[name] = row
    ids = dataset.config.get("ids") if isinstance(dataset.config, dict) else None
    return {
        "source": source,
        "context": int(context),
        "steps": int(y.shape[1]),
        "units": units,
        "ids": [str(i) for i in (ids or range(len(y)))],
        "parameters": parameters,
    }


def median_relative_error(row: dict, key: str = "value") -> float | None:
    """Median over trajectories of `|row[key] - true| / |true|` for one component of
    `parameter_table`'s `parameters` (`key`: `"value"`, read, or `"refined"`); None where
    the row lacks `key` or the truth. A zero truth counts as 1e-12."""
    if key not in row or "true" not in row:
        return None
    value, true = np.asarray(row[key], float), np.asarray(row["true"], float)
    return float(np.median(np.abs(value - true) / np.maximum(np.abs(true), 1e-12)))


def table_rows(table: dict) -> tuple[list[str], list[list]]:
    """`parameter_table`'s result as a flat table: `(header, rows)`, one row per
    trajectory: `trajectory`, then per component `NAME`, `NAME_std`, `NAME_range` and,
    where known, `NAME_true`."""
    header, columns = ["trajectory"], [table["ids"]]
    for name, row in table["parameters"].items():
        for key in ("value", "std", "range", "refined", "true"):
            if key in row:
                header.append(name if key == "value" else f"{name}_{key}")
                columns.append(row[key])
    return header, [list(r) for r in zip(*columns, strict=True)]
