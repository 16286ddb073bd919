"""Decoder options whose default changed after run folders had been written with it.

A WARP records each of them explicitly in its config (`explicit_options`), so a stored
config that lacks one was written before the change and used the old value
(`legacy_options`): such a run folder or checkpoint keeps loading as the model it was.
"""

# decoder name: {option: (the default before, the default now)}
CHANGED_DEFAULTS: dict[str, dict[str, tuple]] = {
    # 2026-12-02: the readout reads tau only (README, "Which readout")
    "damped_oscillator": {"input_prev": (True, False)},
}


def _filled(decoder, options: dict | None, which: int) -> dict:
    if options is not None and not isinstance(options, dict):
        return options  # not options at all: the decoder's own check names the problem
    changed = CHANGED_DEFAULTS.get(decoder, {}) if isinstance(decoder, str) else {}
    return {**{name: values[which] for name, values in changed.items()}, **(options or {})}


def explicit_options(decoder, options: dict | None) -> dict:
    """`options` of the decoder named `decoder` with today's default of every changed
    option they do not set (a model being built)."""
    return _filled(decoder, options, 1)


def legacy_options(decoder, options: dict | None) -> dict:
    """`options` of the decoder named `decoder`, read from a stored config, with the
    default from before the change of every changed option they lack."""
    return _filled(decoder, options, 0)
