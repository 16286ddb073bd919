"""Reading `.npy` and `.npz` arrays without trusting their headers.

A `.npy` header declares a shape and a dtype, and numpy allocates that much memory
before it reads a byte of data: a 100-byte file that declares 1 TiB fails with a
`MemoryError`. Here each array's declared size is checked first against the bytes that
can follow its header: the rest of the file, or the member's size in the zip archive,
itself bounded by what the member's compressed bytes can expand to.
"""

import math
import os
import zipfile
import zlib

import numpy as np
from numpy.lib import format as npy_format

# How far a member's compressed bytes can expand: stored 1:1; deflate at most 1032:1
# (a 258-byte match in 2 bits). numpy's savez and savez_compressed use these two.
_MAX_RATIO = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: 1032}
# what a truncated, corrupt or hostile file makes zipfile, zlib or numpy raise
_CORRUPT = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    RuntimeError,
    NotImplementedError,
    KeyError,
    TypeError,
)


def read_npy(path: str | os.PathLike) -> np.ndarray:
    """The array in the `.npy` file `path` (no pickles).

    Raises `OSError` if the file cannot be opened and `ValueError` if it is not a
    `.npy` file, is truncated, or declares more data than it holds.
    """
    with open(path, "rb") as f:
        try:
            _check_declared_size(f, os.fstat(f.fileno()).st_size, "its header")
            f.seek(0)
            return npy_format.read_array(f, allow_pickle=False)
        except _CORRUPT as e:
            raise ValueError(f"{path} is not a valid .npy array file: {_describe(e)}") from None


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays in the `.npz` archive `path`, by name (member names without `.npy`).

    Raises `OSError` if the file cannot be opened and `ValueError` if it is not a zip
    archive of `.npy` arrays, is truncated or corrupt, or a member declares more data
    than the archive can hold.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        try:
            with zipfile.ZipFile(f) as archive:
                return {
                    info.filename.removesuffix(".npy"): _read_member(archive, info, size)
                    for info in archive.infolist()
                    if not info.is_dir()
                }
        except _CORRUPT as e:
            raise ValueError(
                f"{path} is not a valid systems data set or .npz archive (truncated, corrupt, "
                f"or another format with an .npz name?): {_describe(e)}"
            ) from None


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, size: int) -> np.ndarray:
    what = f"the header of member {info.filename!r}"
    ratio = _MAX_RATIO.get(info.compress_type)
    if info.compress_size > size or (
        ratio is not None and info.file_size > ratio * info.compress_size + 1024
    ):
        raise ValueError(
            f"member {info.filename!r} claims {_bytes(info.file_size)} from "
            f"{_bytes(info.compress_size)} compressed, more than the {_bytes(size)} archive "
            "can hold"
        )
    with archive.open(info) as f:
        _check_declared_size(f, info.file_size, what)
        f.seek(0)
        return npy_format.read_array(f, allow_pickle=False)


def _check_declared_size(f, size: int, what: str) -> None:
    """Reads the `.npy` header at the start of `f` (of `size` bytes) and raises a
    `ValueError` if the array it declares needs more bytes than follow the header."""
    version = npy_format.read_magic(f)
    # version 3 differs from 2 only in the header's text encoding (UTF-8 field names)
    if version == (1, 0):
        shape, _, dtype = npy_format.read_array_header_1_0(f)
    else:
        shape, _, dtype = npy_format.read_array_header_2_0(f)
    if any(n < 0 for n in shape):
        raise ValueError(f"{what} declares a negative shape {shape}")
    need, left = math.prod(shape) * dtype.itemsize, size - f.tell()
    if need > left:
        raise ValueError(
            f"{what} declares a {shape} array of {dtype} ({_bytes(need)}), but only "
            f"{_bytes(left)} of data follow (truncated or corrupt)"
        )


def _bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.4g} {unit}"
        n /= 1024
    return f"{n:.4g} TiB"


def _describe(error: Exception) -> str:
    """`error` in one line, with its type unless it is one of our `ValueError`s."""
    text = str(error) if type(error) is ValueError else f"{type(error).__name__}: {error}"
    return " ".join(text.split())
