"""Checkpoints: one self-describing file, written atomically.

Layout: the magic line `WARPPHYS-CKPT\n`, one line of JSON (format version, model
class, constructor config, payload size and SHA-256, user metadata), then the leaves
serialised by `equinox.tree_serialise_leaves`.
"""

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

import equinox as eqx
import jax

MAGIC = b"WARPPHYS-CKPT\n"
FORMAT_VERSION = 1
_BUILDERS: dict[str, type] = {}


def register_model_class(cls: type) -> type:
    """Let `load_model` rebuild models of class `cls` from their `config`."""
    _BUILDERS[cls.__name__] = cls
    return cls


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to a temporary file next to `path`, then rename it into place, so a
    crash never leaves a half-written file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_model(path: str | os.PathLike, model: eqx.Module, *, metadata: dict | None = None) -> Path:
    """Save `model` (any registered model class with a `config` property) to `path`."""
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, model)
    payload = buffer.getvalue()
    header = {
        "format_version": FORMAT_VERSION,
        "model_class": type(model).__name__,
        "config": model.config,
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
    if header.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: checkpoint format version {header.get('format_version')!r} "
            f"is not supported (this version reads {FORMAT_VERSION})"
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
        cls = _BUILDERS.get(header["model_class"])
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
    try:
        return eqx.tree_deserialise_leaves(io.BytesIO(payload), like)
    except Exception as err:  # equinox raises assorted errors on shape mismatch
        raise ValueError(
            f"{path}: checkpoint does not match the model architecture: {err}"
        ) from err
