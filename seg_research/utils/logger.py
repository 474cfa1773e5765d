"""Logging set-up: console on rank 0, ``log.txt`` (rank 0) or ``log.txt.rank{N}`` in OUTPUT_DIR."""
from __future__ import annotations

import functools
import logging
import os
import sys
import time
from typing import Optional

__all__ = ["setup_logger", "log_first_n", "log_every_n", "log_every_n_seconds"]

_FORMAT = "[%(asctime)s %(name)s %(levelname)s]: %(message)s"
_DATEFMT = "%m/%d %H:%M:%S"


@functools.lru_cache()
def setup_logger(output: Optional[str] = None, distributed_rank: int = 0, name: str = "seg_research",
                 abbrev_name: str = "seg") -> logging.Logger:
    """Configure and return the logger ``name``.

    Args:
        output: a ``.txt``/``.log`` file path, or a folder (then ``folder/log.txt``).
            Ranks other than 0 write to ``<file>.rank{N}``.
        distributed_rank: only rank 0 logs to the console.
    """
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    formatter = logging.Formatter(_FORMAT.replace("%(name)s", abbrev_name if name == "seg_research" else "%(name)s"),
                                  datefmt=_DATEFMT)
    if distributed_rank == 0:
        console = logging.StreamHandler(stream=sys.stdout)
        console.setLevel(logging.INFO)
        console.setFormatter(formatter)
        logger.addHandler(console)
    if output is not None:
        filename = output if output.endswith((".txt", ".log")) else os.path.join(output, "log.txt")
        if distributed_rank > 0:
            filename = f"{filename}.rank{distributed_rank}"
        os.makedirs(os.path.dirname(os.path.abspath(filename)), exist_ok=True)
        file_handler = logging.FileHandler(filename, mode="a", encoding="utf-8")
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(logging.Formatter(_FORMAT, datefmt=_DATEFMT))
        logger.addHandler(file_handler)
    return logger


_LOGGED_ONCE: dict = {}


def log_first_n(level: int, msg: str, n: int = 1, name: str = "seg_research", key: str = "message") -> None:
    """Log ``msg`` only the first ``n`` times this ``key`` (the message by default) is seen."""
    k = (name, msg if key == "message" else key)
    _LOGGED_ONCE[k] = _LOGGED_ONCE.get(k, 0) + 1
    if _LOGGED_ONCE[k] <= n:
        logging.getLogger(name).log(level, msg)


_CALL_COUNTS: dict = {}
_LAST_LOGGED: dict = {}


def _caller_key() -> tuple:
    frame = sys._getframe(2)
    return frame.f_code.co_filename, frame.f_lineno


def log_every_n(level: int, msg: str, n: int = 1, name: str = "seg_research") -> None:
    """Log ``msg`` on the 1st, (n+1)-th, (2n+1)-th, ... call from the same line of code."""
    key = _caller_key()
    _CALL_COUNTS[key] = _CALL_COUNTS.get(key, 0) + 1
    if (_CALL_COUNTS[key] - 1) % n == 0:
        logging.getLogger(name).log(level, msg)


def log_every_n_seconds(level: int, msg: str, n: float = 1, name: str = "seg_research") -> None:
    """Log ``msg`` from a line of code at most once every ``n`` seconds."""
    key = _caller_key()
    now = time.time()
    if key not in _LAST_LOGGED or now - _LAST_LOGGED[key] >= n:
        logging.getLogger(name).log(level, msg)
        _LAST_LOGGED[key] = now
