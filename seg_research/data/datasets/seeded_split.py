"""A fixed, seeded assignment of names (images, sequences) to splits that does not depend on file order.

Rule (documented so a split can be re-derived by hand): the names are ordered by the
hex SHA-256 digest of ``"<seed>:<name>"`` (ties cannot happen for distinct names in
practice; the name breaks them). With ``n`` names and splits ``s_0, s_1, ..., s_k`` in
the order of ``fractions``, every split after the first gets
``max(1, floor(n * fraction + 0.5))`` names (the ``max(1, ...)`` only when ``n > k``, so
that no split is empty) and the first split gets the rest; the names are then dealt in
rank order: ``s_0``'s share first, then ``s_1``'s, and so on. The same (names,
fractions, seed) always give the same assignment, on any machine and Python version.
"""
from __future__ import annotations

import hashlib
import math
from typing import Dict, Iterable, Mapping

__all__ = ["assign_splits"]


def _rank_key(seed: int, name: str) -> tuple:
    # surrogateescape: a name from a non-UTF-8 file name (os.listdir) hashes as its raw bytes
    return hashlib.sha256(f"{seed}:{name}".encode("utf-8", "surrogateescape")).hexdigest(), name


def assign_splits(names: Iterable[str], fractions: Mapping[str, float], seed: int) -> Dict[str, str]:
    """Assign each of ``names`` to one split (module doc for the rule).

    Args:
        names: distinct names (duplicates count once).
        fractions: split name -> fraction of the names, in order; the first split takes
            what the others leave (e.g. ``{"train": 0.6, "val": 0.2, "test": 0.2}``).
        seed: changes the order, hence the assignment.

    Returns:
        ``{name: split}`` for every name.
    """
    ordered = sorted(set(names), key=lambda name: _rank_key(seed, name))
    splits = list(fractions)
    n = len(ordered)
    counts = {}
    for split in splits[1:]:
        count = math.floor(n * fractions[split] + 0.5)
        counts[split] = max(1, count) if n > len(splits) - 1 else count
    counts[splits[0]] = max(0, n - sum(counts.values()))
    assignment: Dict[str, str] = {}
    start = 0
    for split in splits:
        for name in ordered[start:start + counts[split]]:
            assignment[name] = split
        start += counts[split]
    return assignment
