"""Atomic file output for every file the package writes: a temporary file next to the
target, renamed into place, so a crash or an error never leaves a half-written file."""

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path in `path`'s folder (created if missing); when the block
    ends without an error, the file there is made world-readable (0644) and renamed
    onto `path`; on an error it is removed.

    **Arguments:**

    - `path`: the final file.
    - `suffix`: the temporary file's suffix (writers such as matplotlib pick the format
      from it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; our outputs are not
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (flushed to disk before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return Path(path)


def atomic_write_json(path: str | os.PathLike, value) -> Path:
    """Write `value` as indented, strict JSON (no NaN or infinity) to `path` atomically."""
    text = json.dumps(value, indent=2, allow_nan=False) + "\n"
    return atomic_write_bytes(path, text.encode())
