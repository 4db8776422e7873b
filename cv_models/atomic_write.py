"""How latentcv writes its own files: atomically (:func:`write_atomically`), so that a crash,
a kill or a full disk never leaves half a file and a failed write keeps the previous one
(docs/security.md)."""

from __future__ import annotations

import contextlib
import io
import os
import secrets
from pathlib import Path
from typing import BinaryIO, Callable, Union


class WriteError(OSError):
    """A file could not be written (disk full, I/O error, no permission). ``str()`` names
    the file and the cause; ``errno`` is the cause's. The previous file at that path, if
    any, is unchanged and no temporary file is left."""

    def __str__(self) -> str:
        return str(self.strerror)

    @classmethod
    def of(cls, what: str, path: Path, cause: OSError, had_previous: bool) -> "WriteError":
        """ "cannot write <what> <path>: <cause>; the previous <what> is kept" (or "nothing
        was written")."""
        reason = getattr(cause, "reason", None) or cause.strerror or str(cause)
        kept = f"the previous {what} is kept" if had_previous else "nothing was written"
        error = cls(cause.errno, f"cannot write {what} {path}: {reason}; {kept}")
        error.reason = reason
        return error


Content = Union[bytes, bytearray, memoryview, Callable[[BinaryIO], None]]


def write_atomically(path: str | os.PathLike, content: Content, what: str) -> Path:
    """Write ``content`` (bytes, or a function that writes to a binary file) to ``path``,
    atomically: a temporary file in the same folder, flushed to disk (fsync), renamed over
    ``path``. A reader never sees half a file, and a failed write keeps the previous one.

    The file gets the mode a plain ``open(path, "w")`` gives a new file (``0o666`` less the
    umask), whatever mode an earlier file at ``path`` had. A function ``content`` writes
    into memory first, so that every disk error is an ``OSError`` of this function
    (``torch.save`` reports those as a vague ``RuntimeError``).

    Raises:
        WriteError: "cannot write <what> <path>: <cause>; the previous <what> is kept"
            (or "nothing was written" where there was none).
    """
    path = Path(path)
    data = _as_bytes(content)
    had_previous = path.is_file()
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temporary(path)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise WriteError.of(what, path, exc, had_previous) from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    _sync_folder(path.parent)
    return path


def _as_bytes(content: Content) -> bytes | memoryview:
    """``content`` as bytes (a writer function writes into memory)."""
    if isinstance(content, (bytes, bytearray, memoryview)):
        return content
    buffer = io.BytesIO()
    content(buffer)
    return buffer.getbuffer()


def _create_temporary(path: Path) -> tuple[int, str]:
    """A new file ``.<name>.<pid>.<random>.tmp`` beside ``path``, created with mode 0o666
    (the kernel takes the umask off, as for ``open()``); (descriptor, name)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def _write_all(fd: int, data: bytes | memoryview) -> None:
    """``os.write`` until every byte is written (a short write is retried; its error raised)."""
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view) :]


def _sync_folder(folder: Path) -> None:
    """Flush the folder entry of a rename to disk, where the file system allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
