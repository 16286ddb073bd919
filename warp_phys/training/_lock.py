"""The lock of a run folder: one training process at a time writes into it.

`run_lock(folder)` takes an exclusive `fcntl.flock` on `folder/.lock` (which then holds
the PID of the holder) for as long as the block runs; the operating system releases
it when the process ends, however it ends, so a killed run never leaves the folder
locked. A second process gets a one-line `BlockingIOError` naming the holder's PID.
The lock is re-entrant within a process (`train_run` holds it around `train`).

Holding the lock, the temporaries that killed writes of the training files left behind
(`.last.eqx.<random>.tmp`, see `systems.atomic_path`) are removed: only a lock holder
writes those files, so no such temporary can belong to a live writer.

Where `fcntl` does not exist (Windows) the folder is not locked; where the file system
refuses locks, training goes on with a warning.
"""

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_NAME = ".lock"
# the files only a training process writes (atomically) into a run folder
TRAINING_FILES = (
    "config.json",
    "normalizer.json",
    "data.json",
    "best.eqx",
    "last.eqx",
    "metrics.jsonl",
    "summary.json",
)
_held: set[Path] = set()  # the folders this process holds


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporaries of interrupted atomic writes of `TRAINING_FILES` in
    `folder` (call it holding the lock). **Returns:** the paths removed."""
    stale = [p for name in TRAINING_FILES for p in folder.glob(f".{name}.*.tmp")]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold the lock of the run folder `folder` (created if missing) for the block.

    Raises `NotADirectoryError` when `folder` is a file and `BlockingIOError` (naming
    the holder's PID) when another process holds the lock. A folder this call created
    is removed again when the block leaves nothing in it.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file, not a run folder")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    if key in _held or fcntl is None:
        yield folder
        return
    with open(folder / LOCK_NAME, "a+") as handle:
        locked = True
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read(20).strip() or "unknown"
            raise BlockingIOError(
                f"{folder} is in use by another training process (PID {holder}); wait for "
                "it to end or choose another folder"
            ) from None
        except OSError as err:  # a file system without locks: train, but say so
            warnings.warn(f"cannot lock {folder} ({err}); training without the lock", stacklevel=3)
            locked = False
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        _held.add(key)
        try:
            if locked:  # else a live writer's temporary may look stale
                remove_stale_temporaries(folder)
            yield folder
        finally:
            _held.discard(key)
            if created and [p.name for p in folder.iterdir()] == [LOCK_NAME]:
                (folder / LOCK_NAME).unlink()
                folder.rmdir()
