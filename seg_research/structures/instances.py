"""``Instances``: the per-image bag of per-instance fields passed between data, model and evaluation."""
from __future__ import annotations

from typing import Any, Dict, List, Tuple, Union

import numpy as np
import torch

__all__ = ["Instances"]


class Instances:
    """The instances of one image: named fields that all hold one entry per instance.

    Fields are read and written as attributes (``inst.gt_boxes = Boxes(...)``) or through
    :meth:`set` / :meth:`get`. Usual fields: ``gt_boxes`` / ``pred_boxes`` (:class:`Boxes`,
    XYXY absolute pixels), ``gt_classes`` / ``pred_classes`` (int64 (N,), 0-based contiguous
    class ids), ``scores`` (float32 (N,)), ``gt_masks`` (:class:`PolygonMasks` or
    :class:`BitMasks`), ``pred_masks`` (float or bool (N, H, W) or (N, 1, M, M)).

    A field may be anything with ``__len__`` and ``__getitem__`` (tensor, list, Boxes, masks);
    :meth:`cat` additionally needs ``torch.cat``, list concatenation or a ``cat`` classmethod.
    """

    def __init__(self, image_size: Tuple[int, int], **fields: Any) -> None:
        """
        Args:
            image_size: (height, width) of the image the instances live in.
            fields: initial fields, e.g. ``gt_boxes=..., gt_classes=...``.
        """
        self._image_size = (int(image_size[0]), int(image_size[1]))
        self._fields: Dict[str, Any] = {}
        for name, value in fields.items():
            self.set(name, value)

    @property
    def image_size(self) -> Tuple[int, int]:
        """(height, width) of the image."""
        return self._image_size

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            super().__setattr__(name, value)
        else:
            self.set(name, value)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal attribute lookup fails, i.e. for fields. Private names are never
        # fields; refusing them keeps copy/pickle (which probe attributes before __init__) working.
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._fields:
            raise AttributeError(f"Instances has no field '{name}'. Available fields: {sorted(self._fields)}.")
        return self._fields[name]

    def set(self, name: str, value: Any) -> None:
        """Add or replace field ``name``.

        Raises:
            ValueError: if ``value`` does not have one entry per instance (the length of the
                other fields).
        """
        value_len = len(value)
        others = [(other_name, other) for other_name, other in self._fields.items() if other_name != name]
        if others and len(others[0][1]) != value_len:
            other_name, other = others[0]
            raise ValueError(
                f"Cannot set field '{name}' of length {value_len} on Instances of length {len(other)} "
                f"(field '{other_name}'): every field must have one entry per instance."
            )
        self._fields[name] = value

    def has(self, name: str) -> bool:
        return name in self._fields

    def remove(self, name: str) -> None:
        """Delete field ``name``; raises ``KeyError`` naming the available fields if it is absent."""
        if name not in self._fields:
            raise KeyError(f"Instances has no field '{name}' to remove. Available fields: {sorted(self._fields)}.")
        del self._fields[name]

    def get(self, name: str) -> Any:
        return getattr(self, name)

    def get_fields(self) -> Dict[str, Any]:
        """The name -> value dict of all fields (the live dict: modifying it modifies the Instances)."""
        return self._fields

    def to(self, *args: Any, **kwargs: Any) -> "Instances":
        """A new Instances whose fields with a ``to`` method were moved with these arguments.

        Tensor fields accept anything ``Tensor.to`` does; Boxes, BitMasks and PolygonMasks take a device.
        """
        moved = Instances(self._image_size)
        for name, value in self._fields.items():
            if hasattr(value, "to"):
                value = value.to(*args, **kwargs)
            moved.set(name, value)
        return moved

    def __getitem__(self, item: Union[int, slice, torch.Tensor, List[int]]) -> "Instances":
        """Select instances by int, slice, bool mask of length N, or index tensor/list.

        An int returns an Instances of length 1.
        """
        if isinstance(item, (int, np.integer)):
            length = len(self)
            if not -length <= item < length:
                raise IndexError(f"Instances index {item} out of range for {length} instances.")
            item = slice(item, item + 1) if item != -1 else slice(item, None)
        selected = Instances(self._image_size)
        for name, value in self._fields.items():
            selected.set(name, value[item])
        return selected

    def __len__(self) -> int:
        for value in self._fields.values():
            return len(value)
        raise TypeError("len() of an Instances without fields is undefined: set a field first.")

    @staticmethod
    def cat(instance_lists: List["Instances"]) -> "Instances":
        """Concatenate Instances of the same image and the same field names into one.

        Raises:
            ValueError: for an empty list, different image sizes, different field names, or a
                field type that cannot be concatenated.
        """
        if len(instance_lists) == 0:
            raise ValueError("Instances.cat needs at least one Instances.")
        first = instance_lists[0]
        for other in instance_lists[1:]:
            if other.image_size != first.image_size:
                raise ValueError(
                    f"Instances.cat got image sizes {first.image_size} and {other.image_size}; they must be equal."
                )
            if set(other._fields) != set(first._fields):
                raise ValueError(
                    f"Instances.cat got fields {sorted(first._fields)} and {sorted(other._fields)}; they must be equal."
                )
        joined = Instances(first.image_size)
        for name, value in first._fields.items():
            values = [inst._fields[name] for inst in instance_lists]
            if isinstance(value, torch.Tensor):
                merged = torch.cat(values, dim=0)
            elif isinstance(value, list):
                merged = [entry for v in values for entry in v]
            elif hasattr(type(value), "cat"):
                merged = type(value).cat(values)
            else:
                raise ValueError(f"Instances.cat cannot concatenate field '{name}' of type {type(value).__name__}.")
            joined.set(name, merged)
        return joined

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value}" for name, value in self._fields.items())
        return (
            f"Instances(num_instances={len(self) if self._fields else 0}, image_height={self._image_size[0]}, "
            f"image_width={self._image_size[1]}, fields=[{fields}])"
        )
