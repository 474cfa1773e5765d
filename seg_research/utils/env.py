"""Seeding and environment facts."""
from __future__ import annotations

import logging
import os
import random
from datetime import datetime

import numpy as np
import torch

__all__ = ["seed_all_rng"]


def seed_all_rng(seed: int | None = None) -> int:
    """Seed python, numpy and torch RNGs. ``None`` or negative picks a fresh seed (logged).

    Returns the seed used.
    """
    if seed is None or seed < 0:
        seed = (os.getpid() + int(datetime.now().strftime("%S%f")) + int.from_bytes(os.urandom(2), "big")) % 2**31
        logging.getLogger(__name__).info(f"Using a generated random seed {seed}")
    np.random.seed(seed)
    torch.manual_seed(seed)
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    return seed
