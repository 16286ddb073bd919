"""Atomic file output: write to a temporary file next to the target, then rename it into
place, so a crash or an error never leaves a half-written file behind."""

import contextlib
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
