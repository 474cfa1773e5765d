"""Axis-aligned boxes: the :class:`BoxMode` enum of dataset dicts and the :class:`Boxes` tensor wrapper.

Coordinates are absolute pixels in the continuous convention of COCO: pixel ``(i, j)`` (row,
column) covers ``[j, j + 1) x [i, i + 1)``, so a box covering exactly that pixel is
``(j, i, j + 1, i + 1)`` in XYXY and its area is 1.
"""
from __future__ import annotations

from enum import IntEnum
from typing import Iterator, List, Sequence, Tuple, Union

import numpy as np
import torch
from torchvision.ops import box_area, box_convert, box_iou, clip_boxes_to_image

__all__ = ["BoxMode", "Boxes", "pairwise_intersection", "pairwise_iou", "pairwise_ioa", "pairwise_point_box_distance", "matched_pairwise_iou"]

RawBoxType = Union[List[float], Tuple[float, ...], torch.Tensor, np.ndarray]

# torchvision.ops.box_convert format names of the modes seg_research converts between.
_TORCHVISION_FORMAT = {0: "xyxy", 1: "xywh"}


class BoxMode(IntEnum):
    """How the 4 (or 5) numbers of a box are laid out; the ``bbox_mode`` of a dataset dict.

    Values are those of detectron2, so serialised dataset dicts stay interchangeable.
    """

    XYXY_ABS = 0
    """(x0, y0, x1, y1) in absolute pixels: top-left and bottom-right corners."""
    XYWH_ABS = 1
    """(x0, y0, w, h) in absolute pixels, as in COCO json."""
    XYXY_REL = 2
    """(x0, y0, x1, y1) as fractions of image width/height. Not convertible: needs the image size."""
    XYWH_REL = 3
    """(x0, y0, w, h) as fractions of image width/height. Not convertible: needs the image size."""
    XYWHA_ABS = 4
    """(xc, yc, w, h, angle) rotated boxes. Not supported by seg_research."""

    @staticmethod
    def convert(box: RawBoxType, from_mode: "BoxMode", to_mode: "BoxMode") -> RawBoxType:
        """Convert box(es) between :attr:`XYXY_ABS` and :attr:`XYWH_ABS`.

        Args:
            box: one box as a list/tuple of 4 numbers, or a ``np.ndarray`` / ``torch.Tensor``
                of shape (4,) or (N, 4).
            from_mode, to_mode: the modes (``BoxMode`` or their int values).

        Returns:
            The converted box(es) in the input's type: list in gives list out, tuple gives
            tuple, ndarray gives ndarray (same dtype), Tensor gives Tensor (same dtype and
            device). When the modes are equal the input is returned unchanged.

        Raises:
            ValueError: for a relative or rotated mode, or a box of the wrong shape.
        """
        from_mode, to_mode = BoxMode(from_mode), BoxMode(to_mode)
        if from_mode == to_mode:
            return box
        for mode in (from_mode, to_mode):
            if mode not in (BoxMode.XYXY_ABS, BoxMode.XYWH_ABS):
                raise ValueError(
                    f"BoxMode.convert supports only XYXY_ABS and XYWH_ABS, got {mode.name}. "
                    "Relative boxes need the image size: multiply x by the width and y by the "
                    "height first; rotated boxes are not supported."
                )
        if isinstance(box, torch.Tensor):
            tensor = box
        else:
            tensor = torch.from_numpy(np.ascontiguousarray(box))
        if tensor.dim() not in (1, 2) or tensor.shape[-1] != 4:
            raise ValueError(f"BoxMode.convert expects a box of shape (4,) or (N, 4), got shape {tuple(tensor.shape)}.")
        converted = box_convert(tensor, _TORCHVISION_FORMAT[from_mode], _TORCHVISION_FORMAT[to_mode])
        if isinstance(box, torch.Tensor):
            return converted
        if isinstance(box, np.ndarray):
            return converted.numpy()
        return type(box)(converted.tolist())


class Boxes:
    """N boxes stored as ``tensor``: float32 of shape (N, 4), XYXY absolute pixels.

    Indexing (``boxes[i]``, ``boxes[2:5]``, ``boxes[bool_mask]``, ``boxes[long_idx]``) returns a
    new :class:`Boxes` that may share storage with this one.
    """

    def __init__(self, tensor: Union[torch.Tensor, np.ndarray, Sequence[Sequence[float]]]) -> None:
        """
        Args:
            tensor: (N, 4) boxes in XYXY_ABS; anything ``torch.as_tensor`` accepts. It is cast to
                float32 on its own device. An empty input gives a (0, 4) tensor.

        Raises:
            ValueError: if the shape is not (N, 4) or a coordinate is NaN/infinite.
        """
        device = tensor.device if isinstance(tensor, torch.Tensor) else torch.device("cpu")
        tensor = torch.as_tensor(tensor, dtype=torch.float32, device=device)
        if tensor.numel() == 0:
            tensor = tensor.reshape((-1, 4))
        if tensor.dim() != 2 or tensor.shape[-1] != 4:
            raise ValueError(f"Boxes expects a tensor of shape (N, 4) in XYXY_ABS, got shape {tuple(tensor.shape)}.")
        if not torch.isfinite(tensor).all():
            raise ValueError("Boxes got NaN or infinite coordinates; check the box regression or the annotations.")
        self.tensor = tensor

    def clone(self) -> "Boxes":
        return Boxes(self.tensor.clone())

    def to(self, device: Union[str, torch.device]) -> "Boxes":
        return Boxes(self.tensor.to(device=device))

    @property
    def device(self) -> torch.device:
        return self.tensor.device

    def area(self) -> torch.Tensor:
        """Float32 (N,) areas ``(x1 - x0) * (y1 - y0)`` in square pixels."""
        return box_area(self.tensor)

    def clip(self, box_size: Tuple[int, int]) -> None:
        """Clamp x to [0, width] and y to [0, height], modifying these boxes.

        Args:
            box_size: (height, width) of the image.
        """
        self.tensor = clip_boxes_to_image(self.tensor, box_size)

    def nonempty(self, threshold: float = 0.0) -> torch.Tensor:
        """Bool (N,): True where both width and height are strictly greater than ``threshold``."""
        widths = self.tensor[:, 2] - self.tensor[:, 0]
        heights = self.tensor[:, 3] - self.tensor[:, 1]
        return (widths > threshold) & (heights > threshold)

    def inside_box(self, box_size: Tuple[int, int], boundary_threshold: int = 0) -> torch.Tensor:
        """Bool (N,): True where the box lies in the image enlarged by ``boundary_threshold`` pixels.

        Args:
            box_size: (height, width) of the image.
            boundary_threshold: how far (pixels) a box may stick out of the image.
        """
        height, width = box_size
        t = self.tensor
        return (
            (t[:, 0] >= -boundary_threshold)
            & (t[:, 1] >= -boundary_threshold)
            & (t[:, 2] < width + boundary_threshold)
            & (t[:, 3] < height + boundary_threshold)
        )

    def get_centers(self) -> torch.Tensor:
        """Float32 (N, 2): (x, y) box centers."""
        return (self.tensor[:, :2] + self.tensor[:, 2:]) / 2

    def scale(self, scale_x: float, scale_y: float) -> None:
        """Multiply x coordinates by ``scale_x`` and y coordinates by ``scale_y``, modifying these boxes."""
        factors = self.tensor.new_tensor([scale_x, scale_y, scale_x, scale_y])
        self.tensor = self.tensor * factors

    @classmethod
    def cat(cls, boxes_list: List["Boxes"]) -> "Boxes":
        """Concatenate a list of :class:`Boxes` into one (an empty list gives 0 boxes)."""
        if not all(isinstance(b, Boxes) for b in boxes_list):
            raise TypeError(f"Boxes.cat expects a list of Boxes, got {[type(b).__name__ for b in boxes_list]}.")
        if len(boxes_list) == 0:
            return cls(torch.empty(0, 4))
        return cls(torch.cat([b.tensor for b in boxes_list], dim=0))

    def __getitem__(self, item: Union[int, slice, torch.Tensor, List[int]]) -> "Boxes":
        if isinstance(item, (int, np.integer)):
            return Boxes(self.tensor[item].view(1, -1))
        selected = self.tensor[item]
        if selected.dim() != 2:
            raise IndexError(
                f"Indexing Boxes with {item!r} gave shape {tuple(selected.shape)}; "
                "use an int, slice, bool mask or index list."
            )
        return Boxes(selected)

    def __len__(self) -> int:
        return self.tensor.shape[0]

    def __iter__(self) -> Iterator[torch.Tensor]:
        """Yield each box as a float32 (4,) tensor."""
        yield from self.tensor

    def __repr__(self) -> str:
        return f"Boxes({self.tensor})"


def pairwise_intersection(boxes1: Boxes, boxes2: Boxes) -> torch.Tensor:
    """Float32 (N, M): intersection area of every box of ``boxes1`` (N) with every box of ``boxes2`` (M)."""
    a, b = boxes1.tensor, boxes2.tensor
    top_left = torch.max(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.min(a[:, None, 2:], b[None, :, 2:])
    width_height = (bottom_right - top_left).clamp(min=0)
    return width_height[..., 0] * width_height[..., 1]


def pairwise_iou(boxes1: Boxes, boxes2: Boxes) -> torch.Tensor:
    """Float32 (N, M) intersection-over-union; 0 where both boxes have zero area."""
    return torch.nan_to_num(box_iou(boxes1.tensor, boxes2.tensor), nan=0.0)


def pairwise_ioa(boxes1: Boxes, boxes2: Boxes) -> torch.Tensor:
    """Float32 (N, M) intersection over the area of the ``boxes2`` box; 0 where that area is 0."""
    inter = pairwise_intersection(boxes1, boxes2)
    area2 = boxes2.area()[None, :]
    ioa = inter / area2
    return torch.where(area2 > 0, ioa, torch.zeros_like(ioa))


def pairwise_point_box_distance(points: torch.Tensor, boxes: Boxes) -> torch.Tensor:
    """Float (N, M, 4): for every point (N, 2) ``(x, y)`` and box of ``boxes`` (M), the signed
    distances ``(x - x0, y - y0, x1 - x, y1 - y)`` to the box's left, top, right and bottom
    edges (all positive when the point is inside the box)."""
    x, y = points[:, 0, None], points[:, 1, None]  # (N, 1)
    x0, y0, x1, y1 = boxes.tensor[None].unbind(dim=2)  # each (1, M)
    return torch.stack([x - x0, y - y0, x1 - x, y1 - y], dim=2)


def matched_pairwise_iou(boxes1: Boxes, boxes2: Boxes) -> torch.Tensor:
    """(N,) IoU of ``boxes1[i]`` with ``boxes2[i]`` (same N; 0 where the union is empty).

    Raises:
        ValueError: different numbers of boxes.
    """
    if len(boxes1) != len(boxes2):
        raise ValueError(f"matched_pairwise_iou pairs boxes one to one: got {len(boxes1)} and {len(boxes2)} boxes.")
    a, b = boxes1.tensor, boxes2.tensor
    wh = (torch.minimum(a[:, 2:], b[:, 2:]) - torch.maximum(a[:, :2], b[:, :2])).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    union = boxes1.area() + boxes2.area() - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))
