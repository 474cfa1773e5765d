"""Paths (local or remote through iopath) and atomic writes: nothing half-written is left behind."""
from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from typing import IO, Any, Iterator

from iopath.common.file_io import PathHandler
from iopath.common.file_io import PathManager as _PathManagerCls

from .download import resolve_weights

__all__ = ["PathManager", "atomic_open", "atomic_write_json", "atomic_write_bytes", "torch_save_atomic"]


class _WeightsURLHandler(PathHandler):
    """``detectron2://``, ``http://`` and ``https://`` paths, read through their local copy in the
    download cache (:func:`seg_research.utils.download.resolve_weights`)."""

    def _get_supported_prefixes(self) -> list:
        return ["detectron2://", "http://", "https://"]

    def _get_local_path(self, path: str, force: bool = False, **kwargs: Any) -> str:
        self._check_kwargs(kwargs)
        return resolve_weights(path)

    def _open(self, path: str, mode: str = "r", buffering: int = -1, **kwargs: Any) -> IO:
        self._check_kwargs(kwargs)
        assert mode in ("r", "rb"), f"{path} can only be opened for reading, not with mode '{mode}'"
        return open(self._get_local_path(path), mode, buffering=buffering)


PathManager = _PathManagerCls()
PathManager.register_handler(_WeightsURLHandler())


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Files written through atomic_open get the permissions a plain open() would give.
_FILE_MODE = 0o666 & ~_current_umask()


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync and rename it over ``path``.

    A crash or exception mid-write leaves the previous ``path`` (if any) untouched.
    Raises ``OSError`` naming ``path`` when its folder is not writable or the disk is full.
    """
    assert mode in ("w", "wb"), mode
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
        os.chmod(tmp, _FILE_MODE)
    except OSError as e:
        raise OSError(e.errno, f"Cannot write '{path}': {e.strerror}. Check that its folder is writable.") from e
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _silent_remove(tmp)
        raise OSError(e.errno, f"Failed writing '{path}': {e.strerror}. Nothing was overwritten.") from e
    except BaseException:
        _silent_remove(tmp)
        raise


def _silent_remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


def atomic_write_json(path: str, obj: Any, **dump_kwargs: Any) -> None:
    """``json.dump(obj)`` to ``path`` atomically."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, **dump_kwargs)


def atomic_write_bytes(path: str, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def torch_save_atomic(obj: Any, path: str) -> None:
    """``torch.save`` through a temporary file renamed into place."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())
