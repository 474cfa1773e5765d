"""Rotated RPN: not provided (see ROTATED's advice)."""
from ...utils.absent import ROTATED, absent_names

__getattr__ = absent_names(__name__, {
    "RRPN": ROTATED,
    "find_top_rrpn_proposals": ROTATED,
})
