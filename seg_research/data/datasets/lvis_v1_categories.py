"""LVIS category tables: not provided (see LVIS's advice)."""
from ...utils.absent import LVIS, absent_names

__getattr__ = absent_names(__name__, {
    "LVIS_CATEGORIES": LVIS,
})
