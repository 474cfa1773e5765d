"""How the Checkpointer reports the keys a load left unmatched: grouped per module, and without the aliases of
a tensor that did load (a module registered under two names, e.g. a shared head, has one tensor under two keys)."""
from __future__ import annotations

from collections import defaultdict
from typing import Dict, Iterable, List

from torch import nn

__all__ = ["format_grouped_keys", "group_keys_by_module", "drop_loaded_aliases"]


def group_keys_by_module(keys: Iterable[str]) -> Dict[str, List[str]]:
    """``{module path: [leaf names]}``: ``"a.b.weight"`` goes under ``"a.b"`` as ``"weight"``; a key without a
    dot is its own group with no leaf names."""
    groups: Dict[str, List[str]] = defaultdict(list)
    for key in keys:
        module, dot, leaf = key.rpartition(".")
        if dot:
            groups[module].append(leaf)
        else:
            groups.setdefault(leaf, [])
    return dict(groups)


def format_grouped_keys(keys: Iterable[str]) -> str:
    """``["a.b.weight", "a.b.bias", "c"]`` -> ``"  a.b.{bias, weight}\\n  c"``: one line per module, sorted,
    a single leaf written ``a.b.weight``."""
    lines = []
    for module, leaves in sorted(group_keys_by_module(keys).items()):
        if not leaves:
            suffix = ""
        elif len(leaves) == 1:
            suffix = "." + leaves[0]
        else:
            suffix = ".{" + ", ".join(sorted(leaves)) + "}"
        lines.append("  " + module + suffix)
    return "\n".join(lines)


def drop_loaded_aliases(model: nn.Module, missing_keys: Iterable[str]) -> List[str]:
    """``missing_keys`` (in their order) less those naming a parameter or buffer that the checkpoint did load
    under another of its names (modules reachable by two paths share their tensors)."""
    missing = list(missing_keys)
    missing_set = set(missing)
    names_of: Dict[int, List[str]] = defaultdict(list)  # id(tensor) -> every state_dict name it has
    for prefix, module in model.named_modules(remove_duplicate=False):
        tensors = list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False))
        for name, tensor in tensors:
            if tensor is not None:
                names_of[id(tensor)].append(f"{prefix}.{name}" if prefix else name)
    loaded_elsewhere = set()
    for names in names_of.values():
        if any(n not in missing_set for n in names):
            loaded_elsewhere.update(n for n in names if n in missing_set)
    return [k for k in missing if k not in loaded_elsewhere]
