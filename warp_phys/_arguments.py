"""The checks of WARP's constructor arguments at the API boundary."""

from ._transitions import check_transition


def check_arguments(
    data_size, seq_len, transition, transition_rank, time_step, transition_init="identity"
) -> None:
    """One-line `ValueError`s for WARP arguments out of range."""
    if int(data_size) < 1:
        raise ValueError(f"data_size must be >= 1, got {data_size}")
    if int(seq_len) < 2:
        raise ValueError(f"seq_len must be >= 2, got {seq_len}")
    check_transition(transition, transition_rank, time_step, transition_init)


def floats(values) -> list[float] | None:
    """A per-channel sequence as a JSON-able list of floats (None stays None)."""
    return None if values is None else [float(v) for v in values]


def optional_config(
    transition, time_step, output_size, drive_features, transition_init="identity",
    drive_scale_free=False,
) -> dict:
    """The config entries of the WARP arguments that differ from their defaults
    (`transition`: the built transition object), so that a default model's config (a
    dense A at I, the difference drive, ...) stays that of earlier checkpoints, whose
    fingerprints and loading depend on it."""
    config = {}
    if transition.kind != "dense":
        config["transition"] = transition.kind
    if transition.kind == "lowrank":
        config["transition_rank"] = transition.rank
    if time_step is not None:
        config["time_step"] = float(time_step)
    if output_size is not None:
        config["output_size"] = int(output_size)
    if drive_features:
        config["drive_features"] = int(drive_features)
    if transition_init != "identity":
        config["transition_init"] = str(transition_init)
    if drive_scale_free:
        config["drive_scale_free"] = True
    return config
