"""Checkpoints: one self-describing file, written atomically.

Layout: the magic line `WARPPHYS-CKPT\n`, one line of JSON (format version, model
class, constructor config, payload size and SHA-256, user metadata), then the payload:
the model's leaves serialised by `equinox.tree_serialise_leaves` (`model_size` bytes),
optionally followed by a training state (the optimiser state).

Format 3 (written now): the SHA-256 covers the header (its canonical JSON, sorted keys,
without the `sha256` field) and the payload, so an edited config is caught like a
flipped weight. Formats 1 and 2 are still read, with their weaker check: the SHA-256
of the payload only (their headers are trusted as they are).
"""

import hashlib
import io
import json
import os
import re
from pathlib import Path

import equinox as eqx
import jax

from systems import atomic_write_bytes

from .._interface import model_class
from ..decoders import legacy_options
from ..decoders._lexer import short

MAGIC = b"WARPPHYS-CKPT\n"
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)

# header field: (type, what it must be, the first format version that has it)
_FIELDS = {
    "model_class": (str, "a string", 1),
    "config": (dict, "a JSON object", 1),
    "metadata": (dict, "a JSON object", 1),
    "payload_size": (int, "a non-negative integer", 1),
    "sha256": (str, "64 lowercase hex digits", 1),
    "model_size": (int, "a non-negative integer", 2),
    "has_train_state": (bool, "true or false", 2),
}


def _serialise(tree) -> bytes:
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, tree)
    return buffer.getvalue()


def checkpoint_digest(header: dict, payload: bytes) -> str:
    """The SHA-256 (hex) a format-3 checkpoint stores: of the header's canonical JSON
    (sorted keys, without `sha256`) followed by the payload."""
    fields = {k: v for k, v in header.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode() + payload).hexdigest()


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
        "metadata": metadata or {},
    }
    header["sha256"] = checkpoint_digest(header, payload)
    line = json.dumps(header, sort_keys=True).encode() + b"\n"
    return atomic_write_bytes(path, MAGIC + line + payload)


def _check_fields(header: dict, path: Path) -> None:
    """A `ValueError` naming the first header field that is missing or malformed."""
    version = header["format_version"]
    for name, (kind, what, since) in _FIELDS.items():
        if version < since:
            continue
        value = header.get(name)
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if ok and kind is int:
            ok = value >= 0
        if ok and name == "sha256":
            ok = re.fullmatch("[0-9a-f]{64}", value) is not None
        if not ok:
            got = "it is missing" if name not in header else f"got {short(value, 40)}"
            raise ValueError(f"{path}: checkpoint header field {name!r} must be {what}; {got}")
    if version >= 2 and not (
        header["model_size"] == header["payload_size"]
        or (header["has_train_state"] and header["model_size"] < header["payload_size"])
    ):
        raise ValueError(
            f"{path}: checkpoint header field 'model_size' ({header['model_size']}) does not "
            f"fit 'payload_size' ({header['payload_size']}) and 'has_train_state'"
        )


def _parse(raw: bytes, path: Path) -> tuple[dict, bytes]:
    """The header (checked field by field) and the payload of the bytes `raw`."""
    if not raw.startswith(MAGIC):
        raise ValueError(f"{path} is not a warp-phys checkpoint (bad magic bytes)")
    end = raw.find(b"\n", len(MAGIC))
    try:
        header = json.loads(raw[len(MAGIC) : end]) if end >= 0 else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        header = None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: corrupt checkpoint header (not one line of JSON)")
    version = header.get("format_version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise ValueError(
            f"{path}: checkpoint format version {short(version, 40)} is not supported "
            f"(this version reads {list(READABLE_VERSIONS)})"
        )
    _check_fields(header, path)
    return header, raw[end + 1 :]


def read_header(path: str | os.PathLike) -> tuple[dict, bytes]:
    """Parse and verify a checkpoint file; returns `(header, payload)`.

    Raises `FileNotFoundError` for a missing file and `ValueError` naming the problem
    (the field, for a malformed header) for anything that is not an intact checkpoint
    of a supported version. A format-1 header comes back with the later fields filled
    in (`model_size` the payload size, `has_train_state` false).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    header, payload = _parse(path.read_bytes(), path)
    if len(payload) != header["payload_size"]:
        raise ValueError(
            f"{path}: checkpoint is truncated or padded: expected {header['payload_size']} "
            f"payload bytes, found {len(payload)}"
        )
    if header["format_version"] >= 3:
        intact = checkpoint_digest(header, payload) == header["sha256"]
    else:
        intact = hashlib.sha256(payload).hexdigest() == header["sha256"]
    if not intact:
        raise ValueError(f"{path}: checkpoint is corrupt (SHA-256 mismatch)")
    if header["format_version"] == 1:
        header = dict(header, model_size=len(payload), has_train_state=False)
    return header, payload


def _reason(err: Exception, width: int = 300) -> str:
    """`err` as one line of at most `width` characters (library errors may span lines)."""
    text = f"{type(err).__name__}: {' '.join(str(err).split())}"
    return text if len(text) <= width else text[: width - 3] + "..."


def load_model(path: str | os.PathLike, like: eqx.Module | None = None) -> eqx.Module:
    """Load a model saved by `save_model`.

    The architecture is rebuilt from the stored config; pass `like` (a model of the same
    architecture) when it cannot be rebuilt by name, e.g. for a decoder passed as an
    instance. A checkpoint of another class or shape is a `ValueError`.
    """
    header, payload = read_header(path)
    name, config = header["model_class"], header["config"]
    if isinstance(config, dict) and "decoder" in config:  # as it was built: see legacy_options
        options = legacy_options(config["decoder"], config.get("decoder_options"))
        config = dict(config, decoder_options=options)
    if like is None:
        cls = model_class(name)
        if cls is None:
            raise ValueError(f"{path}: unknown model class {short(name, 80)}")
        try:
            like = cls(**config, key=jax.random.PRNGKey(0))
        except Exception as err:  # the config is data from a file: any failure is a bad file
            raise ValueError(
                f"{path}: cannot rebuild the model from its config: {_reason(err)}"
            ) from err
    elif type(like).__name__ != name or like.config != config:
        raise ValueError(
            f"{path}: checkpoint holds a {short(name, 80)} with config {short(config, 200)}, "
            "which does not match the given model"
        )
    try:
        return eqx.tree_deserialise_leaves(io.BytesIO(payload[: header["model_size"]]), like)
    except Exception as err:  # equinox raises assorted errors on shape mismatch
        raise ValueError(
            f"{path}: checkpoint does not match the model architecture: {_reason(err)}"
        ) from err


def load_train_state(path: str | os.PathLike, like):
    """The training state stored by `save_model(..., train_state=...)`, deserialised
    into the structure of `like`; returns `(header, state)`."""
    header, payload = read_header(path)
    if not header["has_train_state"]:
        raise ValueError(f"{path} holds no training state to resume from")
    try:
        state = eqx.tree_deserialise_leaves(io.BytesIO(payload[header["model_size"] :]), like)
    except Exception as err:
        raise ValueError(
            f"{path}: training state does not match the optimiser: {_reason(err)}"
        ) from err
    return header, state
