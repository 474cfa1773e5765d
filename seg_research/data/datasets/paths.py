"""Paths of dataset files: join them under a root safely and check that they exist."""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence

from seg_research.data.errors import DataError
from seg_research.utils.file_io import PathManager

__all__ = ["resolve_under_root", "check_files_exist", "check_dirs_exist"]


def resolve_under_root(root: str, relative: str, record: Any = None, allow_outside: bool = False) -> str:
    """Join ``relative`` (a path read from an annotation file) onto ``root``.

    The check is lexical (``..`` and absolute paths are normalised, symlinks are not
    followed), so a dataset folder that is itself a symlink keeps working.

    Args:
        root: the folder the annotation file's paths are relative to (e.g. ``image_root``).
        relative: the path as written in the annotation file.
        record: identifier of the record holding the path, reported in the error.
        allow_outside: accept paths that leave ``root`` (``../other/x.jpg``, ``/abs/x.jpg``).

    Returns:
        ``os.path.join(root, relative)``.

    Raises:
        DataError: when the joined path leaves ``root`` and ``allow_outside`` is False.
    """
    joined = os.path.join(root, relative)
    if allow_outside:
        return joined
    root_norm = os.path.normpath(root)
    joined_norm = os.path.normpath(joined)
    if joined_norm != root_norm and not joined_norm.startswith(root_norm.rstrip(os.sep) + os.sep):
        raise DataError(
            f"Path '{relative}' resolves to '{joined_norm}', outside the dataset root '{root}'. "
            f"Fix the path in the annotation file, or pass allow_outside_root=True if the file "
            f"deliberately points outside its root.",
            file_name=relative,
            record=record,
        )
    return joined


def check_files_exist(paths: Sequence[str], what: str, hint: str, source: Optional[str] = None,
                      show: int = 5) -> None:
    """Raise one :class:`DataError` listing the first ``show`` of ``paths`` that do not exist.

    Args:
        paths: files that must exist.
        what: what the files are, for the message (``"images"``, ``"panoptic PNGs"``).
        hint: what the user should check (``"Check that image_root ..."``).
        source: the annotation file that listed ``paths``.
    """
    missing = [p for p in paths if not PathManager.isfile(p)]
    if missing:
        listed = ", ".join(f"'{p}'" for p in missing[:show])
        more = f" and {len(missing) - show} more" if len(missing) > show else ""
        raise DataError(
            f"{len(missing)} of {len(paths)} {what} do not exist: {listed}{more}. {hint}",
            file_name=source,
        )


def check_dirs_exist(paths: Sequence[str], what: str, hint: str) -> None:
    """Raise one :class:`DataError` naming the folders of ``paths`` that do not exist.

    Args:
        paths: folders a dataset layout needs (e.g. ``.../ADEChallengeData2016/images/training``).
        what: the dataset, for the message (``"ADE20K"``).
        hint: where to get the files and how to lay them out.
    """
    missing = [p for p in paths if not PathManager.isdir(p)]
    if missing:
        listed = ", ".join(f"'{p}'" for p in missing)
        raise DataError(f"{what}: expected folder(s) not found: {listed}. {hint}", file_name=missing[0])
