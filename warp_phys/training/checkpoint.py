"""Checkpoints: one self-describing file, written atomically.

Layout: the magic line `WARPPHYS-CKPT\n`, one line of JSON (format version, model
class, constructor config, payload size and SHA-256, user metadata), then the payload:
the model's leaves serialised by `equinox.tree_serialise_leaves` (`model_size` bytes),
optionally followed by a training state (optimiser state; format version 2).
"""

import hashlib
import io
import json
import os
from pathlib import Path

import equinox as eqx
import jax

from systems import atomic_write_bytes

from .._interface import model_class

MAGIC = b"WARPPHYS-CKPT\n"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)


def _serialise(tree) -> bytes:
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, tree)
    return buffer.getvalue()


def save_model(
    path: str | os.PathLike,
    model: eqx.Module,
    *,
    metadata: dict | None = None,
    train_state=None,
) -> Path:
    """Save `model` (any registered model class with a `config` property) to `path`.

    `metadata` is any JSON-able dict stored in the header; `train_state` an optional
    pytree of arrays (the optimiser state) stored after the model, for resuming.
    """
    model_bytes = _serialise(model)
    payload = model_bytes + (b"" if train_state is None else _serialise(train_state))
    header = {
        "format_version": FORMAT_VERSION,
        "model_class": type(model).__name__,
        "config": model.config,
        "model_size": len(model_bytes),
        "has_train_state": train_state is not None,
        "payload_size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "metadata": metadata or {},
    }
    line = json.dumps(header, sort_keys=True).encode() + b"\n"
    return atomic_write_bytes(path, MAGIC + line + payload)


def read_header(path: str | os.PathLike) -> tuple[dict, bytes]:
    """Parse and verify a checkpoint file; returns `(header, payload)`.

    Raises `FileNotFoundError` for a missing file and `ValueError` naming the problem
    for anything that is not an intact checkpoint of a supported version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    raw = path.read_bytes()
    if not raw.startswith(MAGIC):
        raise ValueError(f"{path} is not a warp-phys checkpoint (bad magic bytes)")
    end = raw.find(b"\n", len(MAGIC))
    try:
        header = json.loads(raw[len(MAGIC) : end])
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"{path}: corrupt checkpoint header") from None
    if end < 0 or not isinstance(header, dict):
        raise ValueError(f"{path}: corrupt checkpoint header")
    if header.get("format_version") not in READABLE_VERSIONS:
        raise ValueError(
            f"{path}: checkpoint format version {header.get('format_version')!r} "
            f"is not supported (this version reads {list(READABLE_VERSIONS)})"
        )
    payload = raw[end + 1 :]
    if len(payload) != header["payload_size"]:
        raise ValueError(
            f"{path}: checkpoint is truncated or padded: expected {header['payload_size']} "
            f"payload bytes, found {len(payload)}"
        )
    if hashlib.sha256(payload).hexdigest() != header["sha256"]:
        raise ValueError(f"{path}: checkpoint payload is corrupt (SHA-256 mismatch)")
    return header, payload


def load_model(path: str | os.PathLike, like: eqx.Module | None = None) -> eqx.Module:
    """Load a model saved by `save_model`.

    The architecture is rebuilt from the stored config; pass `like` (a model of the same
    architecture) when it cannot be rebuilt by name, e.g. for a decoder passed as an
    instance. A checkpoint of another class or shape is a `ValueError`.
    """
    header, payload = read_header(path)
    if like is None:
        cls = model_class(header["model_class"])
        if cls is None:
            raise ValueError(f"{path}: unknown model class {header['model_class']!r}")
        try:
            like = cls(**header["config"], key=jax.random.PRNGKey(0))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: cannot rebuild the model from its config: {err}") from err
    elif type(like).__name__ != header["model_class"] or like.config != header["config"]:
        raise ValueError(
            f"{path}: checkpoint holds a {header['model_class']} with config "
            f"{header['config']}, which does not match the given model"
        )
    model_bytes = payload[: header.get("model_size", len(payload))]
    try:
        return eqx.tree_deserialise_leaves(io.BytesIO(model_bytes), like)
    except Exception as err:  # equinox raises assorted errors on shape mismatch
        raise ValueError(
            f"{path}: checkpoint does not match the model architecture: {err}"
        ) from err


def load_train_state(path: str | os.PathLike, like):
    """The training state stored by `save_model(..., train_state=...)`, deserialised
    into the structure of `like`; returns `(header, state)`."""
    header, payload = read_header(path)
    if not header.get("has_train_state"):
        raise ValueError(f"{path} holds no training state to resume from")
    try:
        state = eqx.tree_deserialise_leaves(io.BytesIO(payload[header["model_size"] :]), like)
    except Exception as err:
        raise ValueError(f"{path}: training state does not match the optimiser: {err}") from err
    return header, state
