"""The files of a run folder besides the checkpoints: those `train_run` writes before
training (`config.json`, `normalizer.json`, `data.json`), how `load_run` reads them,
and the check that a checkpoint holds the model they describe."""

import json
from pathlib import Path

import equinox as eqx
import jax

from systems import atomic_write_json

from ..decoders._lexer import short
from .config import RunConfig
from .data import Normalizer
from .models import build_model


def write_start(out: Path, config: RunConfig, normalizer: Normalizer, train, val) -> None:
    """The files a run folder holds before training: `config.json`, `normalizer.json`
    and, for a run on user data, `data.json` (source, channel names, split sizes)."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", config.to_dict())
    atomic_write_json(out / "normalizer.json", normalizer.to_dict())
    if config.data is None:
        return
    meta = train.config
    record = {
        "source": config.data,
        "val_source": config.val_data,
        "format": meta.get("format"),
        "channels": meta.get("channels"),
        "time_column": meta.get("time_column"),
        "n_train": len(train),
        "n_val": len(val),
        "steps": int(train.y.shape[1]),
        "val_ids": val.config.get("ids") if config.val_data is None else None,
    }
    atomic_write_json(out / "data.json", record)


def read_json(folder: Path, name: str):
    """The JSON value of the run file `folder/name`; a `ValueError` when it is not JSON."""
    try:
        return json.loads((folder / name).read_text())
    except (ValueError, RecursionError) as err:  # also undecodable bytes
        raise ValueError(f"{folder}: corrupt run file {name}: {short(str(err), 120)}") from None


def check_model_config(path: Path, model, config: RunConfig, normalizer: Normalizer) -> None:
    """A `ValueError` naming the differing keys unless `model` (loaded from `path`) has
    the config of the model `build_model` makes from `config` and `normalizer` (the
    data size, the decoder's data scale and shift). The sequence length and the time
    step come from the data, which the run folder does not hold: those are taken from
    the checkpoint."""
    stored = model.config
    seq_len = stored.get("seq_len", stored.get("max_len", 2))
    expected = eqx.filter_eval_shape(
        lambda: build_model(
            config,
            int(normalizer.mean.shape[0]),
            seq_len,
            key=jax.random.PRNGKey(0),
            normalizer=normalizer,
            time_step=stored.get("time_step"),
        )
    ).config
    differ = sorted(k for k in expected.keys() | stored.keys() if expected.get(k) != stored.get(k))
    if differ:
        details = "; ".join(
            f"{k} {short(stored.get(k), 50)} (config.json: {short(expected.get(k), 50)})"
            for k in differ[:4]
        )
        more = f" and {len(differ) - 4} more" if len(differ) > 4 else ""
        raise ValueError(
            f"{path} does not hold the model config.json and normalizer.json describe: "
            f"{details}{more}"
        )
