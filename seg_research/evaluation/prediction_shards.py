"""Per-process prediction shard files: how evaluators bring every rank's predictions to the main
process without pickling them all through ``torch.distributed`` (which holds every rank's pickled
bytes and their unpickled copies in the main process at once).

A shard is a JSON-lines file, one JSON record per line, written atomically (temporary file, fsync,
rename) so that a reader never sees half a shard; ``<prefix>.rank-RRRRR-of-WWWWW.jsonl``.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, Iterator, List

from ..utils.file_io import atomic_open

__all__ = ["shard_path", "write_shard", "read_shards"]


def shard_path(folder: str, prefix: str, rank: int, world_size: int) -> str:
    """Path of rank ``rank``'s shard among ``world_size`` in ``folder``."""
    return os.path.join(folder, f"{prefix}.rank-{rank:05d}-of-{world_size:05d}.jsonl")


def write_shard(path: str, records: Iterable[Dict[str, Any]]) -> None:
    """Write ``records`` (JSON-serialisable dicts) one per line to ``path``, atomically."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, separators=(",", ":")))
            f.write("\n")


def read_shards(paths: List[str], *, delete: bool = False) -> Iterator[Dict[str, Any]]:
    """The records of ``paths`` in order, one line at a time; each file is removed once read when ``delete``.

    Raises:
        FileNotFoundError: a shard is missing, naming it and the usual cause (an output folder that
            not every machine sees).
    """
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(paths)} prediction shards are missing, e.g. '{missing[0]}'. Every process "
            f"writes its shard there before the main process reads them: in multi-machine runs the evaluator's "
            f"output folder (OUTPUT_DIR) must be on a filesystem that every machine sees.")
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)
        if delete:
            os.remove(path)
