"""Splice a benchmark's Markdown output into README.md between marker comments.

The README's Results section holds blocks delimited by ``<!-- bench:NAME -->`` and
``<!-- /bench:NAME -->``; a benchmark script calls `splice_readme(NAME, markdown)` after
writing its JSON so the numbers in the README are always the ones the script produced,
never typed by hand. The README is rewritten atomically (temp file + rename).
"""

import os
import re
import tempfile
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def splice_readme(name: str, markdown: str, readme: str | os.PathLike = README) -> bool:
    """Replace the block `name` of `readme` with `markdown`.

    Returns False (and leaves the file alone) when the README has no such block, so a
    benchmark run from a copy of the repository without the markers still succeeds.
    """
    readme = Path(readme)
    text = readme.read_text()
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), flags=re.DOTALL)
    if not pattern.search(text):
        return False
    block = f"{start}\n{markdown.strip()}\n{end}"
    new_text = pattern.sub(lambda _: block, text, count=1)
    fd, tmp = tempfile.mkstemp(dir=readme.parent, prefix=f".{readme.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(new_text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, readme)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
