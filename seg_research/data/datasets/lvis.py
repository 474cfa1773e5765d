"""LVIS datasets: not provided (see LVIS's advice)."""
from ...utils.absent import LVIS, absent_names

__getattr__ = absent_names(__name__, {
    "get_lvis_instances_meta": LVIS,
    "load_lvis_json": LVIS,
    "register_lvis_instances": LVIS,
})
