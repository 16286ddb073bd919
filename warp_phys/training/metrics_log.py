"""`metrics.jsonl`: one JSON object per line (training loss, validation scores)."""

import json
from pathlib import Path

from systems import atomic_write_bytes


class MetricsLog:
    """Appends records to `folder/metrics.jsonl` (nothing when `folder` is None).

    A fresh run starts an empty log; a resumed run (`resume_from=step`) keeps the
    records up to that step and drops any written after it, so the log of a resumed run
    equals that of an uninterrupted one.
    """

    def __init__(self, folder, resume_from: int | None = None):
        self.path = None if folder is None else Path(folder) / "metrics.jsonl"
        if self.path is None:
            return
        kept = []
        if resume_from is not None and self.path.is_file():
            for line in self.path.read_text().splitlines():
                try:
                    if json.loads(line).get("step", 0) <= resume_from:
                        kept.append(line + "\n")
                except ValueError:
                    break  # a torn last line from a crash
        atomic_write_bytes(self.path, "".join(kept).encode())

    def write(self, **record) -> None:
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")


def read_metrics(path) -> list[dict]:
    """The records of a `metrics.jsonl` file."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
