"""The checks of WARP's constructor arguments at the API boundary."""

from ._transitions import check_transition


def check_arguments(
    data_size, seq_len, transition, transition_rank, time_step, transition_init="identity",
    free_run="advance",
) -> None:
    """One-line `ValueError`s for WARP arguments out of range."""
    if free_run not in ("advance", "hold"):
        raise ValueError(f"free_run must be 'advance' or 'hold', got {free_run!r}")
    if free_run == "hold" and transition == "continuous":
        raise ValueError("free_run='hold' needs a regular grid, not transition='continuous'")
    if int(data_size) < 1:
        raise ValueError(f"data_size must be >= 1, got {data_size}")
    if int(seq_len) < 2:
        raise ValueError(f"seq_len must be >= 2, got {seq_len}")
    check_transition(transition, transition_rank, time_step, transition_init)


def check_decoder(decoder, data_size: int, out_size: int) -> None:
    """One-line `ValueError`s for a root decoder that does not fit the model's channels."""
    if decoder.data_size != out_size:
        raise ValueError(
            f"decoder predicts {decoder.data_size} channels but the model's output has {out_size}"
        )
    if out_size != data_size and getattr(decoder, "input_prev", False):
        raise ValueError(
            "output_size != data_size needs a root that does not read the previous "
            'observation: decoder_options={"input_prev": False}'
        )


def floats(values) -> list[float] | None:
    """A per-channel sequence as a JSON-able list of floats (None stays None)."""
    return None if values is None else [float(v) for v in values]


def optional_config(
    transition, time_step, output_size, drive_features, transition_init="identity",
    drive_scale_free=False, free_run="advance",
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
    if free_run != "advance":
        config["free_run"] = free_run
    return config
