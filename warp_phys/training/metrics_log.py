"""`metrics.jsonl`: one JSON object per line (training loss, validation scores)."""

import json
import warnings
from pathlib import Path

from systems import atomic_write_bytes


def _records(path: Path) -> list[tuple[dict, str]]:
    """The records of the log `path` and their lines, each record a JSON object with an
    integer `step`. Lines
    that are not are skipped with a warning, but for a torn last line (no newline: a
    write cut short by a crash), which is dropped silently."""
    lines = path.read_text(errors="replace").split("\n")
    records, bad = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            record = None
        step = record.get("step") if isinstance(record, dict) else None
        if type(step) is int:
            records.append((record, line))
        elif number < len(lines):  # the last piece has no newline: torn, not garbage
            bad.append(number)
    if bad:
        warnings.warn(
            f"{path}: skipped {len(bad)} unreadable line(s) (first: line {bad[0]})",
            stacklevel=3,
        )
    return records


class MetricsLog:
    """Appends records to `folder/metrics.jsonl` (nothing when `folder` is None).

    A fresh run starts an empty log; a resumed run (`resume_from=step`) keeps the
    records up to that step and drops any written after it, so the log of a resumed run
    equals that of an uninterrupted one. Unreadable lines are dropped with a warning;
    the valid records after them are kept.
    """

    def __init__(self, folder, resume_from: int | None = None):
        self.path = None if folder is None else Path(folder) / "metrics.jsonl"
        if self.path is None:
            return
        kept = []
        if resume_from is not None and self.path.is_file():
            kept = [line for r, line in _records(self.path) if r["step"] <= resume_from]
        atomic_write_bytes(self.path, "".join(line + "\n" for line in kept).encode())

    def write(self, **record) -> None:
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")


def read_metrics(path) -> list[dict]:
    """The records of a `metrics.jsonl` file (unreadable lines skipped with a warning)."""
    return [record for record, _ in _records(Path(path))]
