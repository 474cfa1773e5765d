"""Instance masks as polygons (:class:`PolygonMasks`) or dense bitmaps (:class:`BitMasks`), and RLE helpers.

Pixel convention (COCO's): polygon coordinates are continuous pixel coordinates in which
pixel ``(i, j)`` (row ``i``, column ``j``) covers ``[j, j + 1) x [i, i + 1)``. The square
polygon ``[0, 0, 2, 0, 2, 2, 0, 2]`` therefore rasterizes to the 2x2 block of pixels
``(0..1, 0..1)`` and has area 4. Rasterization is pycocotools' (``frPyObjects`` + ``decode``).
"""
from __future__ import annotations

from numbers import Number
from typing import Any, Dict, Iterator, List, Sequence, Tuple, Union

import numpy as np
import pycocotools.mask as mask_util
import torch
from torchvision.ops import roi_align

from .boxes import Boxes

__all__ = ["BitMasks", "PolygonMasks", "polygons_to_bitmask", "rle_to_bitmask", "bitmask_to_rle", "check_rle"]

PolygonType = Union[np.ndarray, Sequence[float]]

# Smallest box side (pixels) used when mapping polygons into a box frame, so that
# degenerate boxes do not divide by zero.
_MIN_BOX_SIDE = 0.1
# pycocotools rasterizes a polygon by walking its whole perimeter at 1/5 pixel: coordinates
# far outside the canvas take unbounded time and memory (and crash it past ~1e9). Polygons
# reaching farther than this many canvas sizes outside the canvas are clipped first.
_CLIP_MARGIN_CANVASES = 1
# PolygonMasks.area rasterizes each instance on a canvas of its own size; refuse larger ones.
_MAX_AREA_CANVAS_PIXELS = 1 << 28


def _as_polygon(polygon: PolygonType, where: str) -> np.ndarray:
    """Validate one flat polygon ``[x0, y0, x1, y1, ...]`` and return it as float64 (2K,)."""
    array = np.asarray(polygon, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{where}: a polygon must be a flat sequence [x0, y0, x1, y1, ...], got shape {array.shape}.")
    if array.size < 6 or array.size % 2:
        raise ValueError(
            f"{where}: a polygon needs an even number of coordinates (x, y pairs), at least 6 (3 points); "
            f"got {array.size}. Drop or fix this polygon in the annotation."
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{where}: polygon has NaN or infinite coordinates. Fix this polygon in the annotation.")
    return array


def _clip_to_rectangle(polygon: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Sutherland-Hodgman clip of a flat polygon (2K,) to the rectangle [x0, x1] x [y0, y1]; may return < 6 values."""
    points = polygon.reshape(-1, 2)
    for axis, bound, keep_below in ((0, x0, False), (0, x1, True), (1, y0, False), (1, y1, True)):
        if len(points) == 0:
            break
        following = np.roll(points, -1, axis=0)
        inside = points[:, axis] <= bound if keep_below else points[:, axis] >= bound
        inside_next = np.roll(inside, -1)
        crossing = inside != inside_next
        t = (bound - points[crossing, axis]) / (following[crossing, axis] - points[crossing, axis])
        cuts = points[crossing] + t[:, None] * (following[crossing] - points[crossing])
        # each vertex kept if inside, followed by the cut point of its outgoing edge if that edge crosses
        pieces = [points[i : i + 1] if inside[i] else points[:0] for i in range(len(points))]
        for k, i in enumerate(np.flatnonzero(crossing)):
            pieces[i] = np.concatenate([pieces[i], cuts[k : k + 1]])
        points = np.concatenate(pieces) if pieces else points[:0]
    return points.reshape(-1)


def _bounded_polygons(polygons: Sequence[np.ndarray], height: int, width: int) -> List[np.ndarray]:
    """Polygons reaching more than a canvas size outside the height x width canvas, clipped to
    it (plus a 1-pixel border) so that rasterizing them stays cheap. Others are unchanged.

    A clipped polygon covers the same region of the canvas; its rasterization may differ on
    a few pixels along the clipped edges (pycocotools rounds vertices to 1/5 pixel).
    """
    low_x, low_y = -_CLIP_MARGIN_CANVASES * max(width, 1), -_CLIP_MARGIN_CANVASES * max(height, 1)
    high_x, high_y = width - low_x, height - low_y
    bounded = []
    for p in polygons:
        xs, ys = p[0::2], p[1::2]
        if xs.min() < low_x or xs.max() > high_x or ys.min() < low_y or ys.max() > high_y:
            p = _clip_to_rectangle(p, -1.0, -1.0, width + 1.0, height + 1.0)
        if p.size >= 6:
            bounded.append(p)
    return bounded


def _polygons_to_rle(polygons: Sequence[np.ndarray], height: int, width: int) -> Dict[str, Any]:
    """Merged (union) RLE of already validated polygons on a height x width canvas."""
    polygons = _bounded_polygons(polygons, height, width)
    if len(polygons) == 0:
        return mask_util.encode(np.zeros((height, width), dtype=np.uint8, order="F"))
    return mask_util.merge(mask_util.frPyObjects(list(polygons), height, width))


def polygons_to_bitmask(polygons: Sequence[PolygonType], height: int, width: int) -> np.ndarray:
    """Rasterize the union of the polygons of one instance.

    Args:
        polygons: flat polygons ``[x0, y0, x1, y1, ...]`` in absolute pixels (module convention).
        height, width: canvas size.

    Returns:
        bool np.ndarray of shape (height, width); all False for an empty list.
    """
    checked = [_as_polygon(p, f"polygon {j}") for j, p in enumerate(polygons)]
    return mask_util.decode(_polygons_to_rle(checked, height, width)).astype(bool)


def _compressed_counts(counts: bytes) -> List[int]:
    """Run lengths of a compressed COCO RLE string (pycocotools' 6-bit-per-character delta code).

    Raises:
        ValueError: for a character outside the code's range or a truncated last value.
    """
    values: List[int] = []
    position = 0
    while position < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(counts):
                raise ValueError("its compressed 'counts' string ends in the middle of a value (truncated)")
            code = counts[position] - 48
            if not 0 <= code < 64:
                raise ValueError(f"its compressed 'counts' string has the character {chr(counts[position])!r}, "
                                 "outside the RLE alphabet '0'..'o'")
            value |= (code & 0x1F) << shift
            more = bool(code & 0x20)
            shift += 5
            position += 1
            if not more and code & 0x10:
                value -= 1 << shift  # sign extension
        if len(values) > 2:
            value += values[-2]
        values.append(value)
    return values


def check_rle(rle: Any) -> Tuple[int, int]:
    """Check that ``rle`` is a well-formed COCO RLE before pycocotools reads it.

    pycocotools trusts its input: run lengths that do not add up to ``height * width``
    make it write outside its buffers (the process dies). This checks the dict, the size
    and every run length without decoding the mask.

    Args:
        rle: ``{"size": [height, width], "counts": str | bytes (compressed) or list of int
            (uncompressed run lengths, column-major, starting with zeros)}``.

    Returns:
        ``(height, width)``.

    Raises:
        ValueError: saying what is malformed.
    """
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError(
            "An RLE segmentation must be a dict {'size': [height, width], 'counts': ...}; "
            f"got {type(rle).__name__} with keys {sorted(map(str, rle)) if isinstance(rle, dict) else 'n/a'}."
        )
    size = rle["size"]
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in size)):
        raise ValueError(f"RLE 'size' must be [height, width], two integers >= 0; got {size!r}.")
    height, width = int(size[0]), int(size[1])
    counts = rle["counts"]
    if isinstance(counts, str):
        if not counts.isascii():
            raise ValueError("Malformed compressed RLE: its 'counts' string has non-ASCII characters, outside the "
                             "RLE alphabet '0'..'o'.")
        counts = counts.encode("ascii")
    if isinstance(counts, bytes):
        try:
            runs = _compressed_counts(counts)
        except ValueError as e:
            raise ValueError(f"Malformed compressed RLE: {e}.") from None
    elif isinstance(counts, list) and all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in counts):
        runs = [int(c) for c in counts]
    else:
        raise ValueError("RLE 'counts' must be a compressed string/bytes or a list of integer run lengths; got "
                         f"{type(counts).__name__}{' with non-integer entries' if isinstance(counts, list) else ''}.")
    if any(c < 0 for c in runs) or sum(runs) != height * width:
        raise ValueError(
            f"RLE counts {'have a negative run length' if any(c < 0 for c in runs) else f'sum to {sum(runs)}'} but "
            f"size {height}x{width} has {height * width} pixels; the 'size' or 'counts' of this segmentation is wrong."
        )
    return height, width


def rle_to_bitmask(rle: Dict[str, Any]) -> np.ndarray:
    """Decode a COCO RLE ``{"size": [height, width], "counts": ...}`` into a bool (height, width) array.

    ``counts`` may be compressed (``str`` or ``bytes``, as written by pycocotools) or
    uncompressed (a list of run lengths starting with a run of zeros, column-major).

    Raises:
        ValueError: for a malformed RLE (:func:`check_rle`).
    """
    height, width = check_rle(rle)
    if isinstance(rle["counts"], list):
        rle = mask_util.frPyObjects(rle, height, width)
    return mask_util.decode(rle).astype(bool)


def bitmask_to_rle(mask: Union[np.ndarray, torch.Tensor]) -> Dict[str, Any]:
    """Encode a (height, width) mask (nonzero = foreground) as a compressed COCO RLE.

    Returns:
        ``{"size": [height, width], "counts": str}``; ``counts`` is utf-8 text, so the dict is
        JSON-serialisable and accepted by :func:`rle_to_bitmask` and pycocotools.
    """
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    if mask.ndim != 2:
        raise ValueError(f"bitmask_to_rle expects one (height, width) mask, got shape {mask.shape}.")
    rle = mask_util.encode(np.asfortranarray(mask != 0, dtype=np.uint8))
    rle["counts"] = rle["counts"].decode("utf-8")
    return rle


def _selected_indices(item: Any, length: int) -> List[int]:
    """Positions selected by a bool mask of length ``length`` or an index list/array/tensor."""
    index = torch.as_tensor(item)
    if index.dtype == torch.bool:
        if index.dim() != 1 or index.numel() != length:
            raise IndexError(f"A bool mask index must have shape ({length},), got {tuple(index.shape)}.")
        index = index.nonzero().flatten()
    return index.flatten().tolist()


class PolygonMasks:
    """Masks of N instances, each a list of flat polygons (their union is the instance).

    ``polygons[i][j]`` is polygon ``j`` of instance ``i``: float64 np.ndarray
    ``[x0, y0, x1, y1, ...]`` in absolute pixels (module convention). Polygons stay on the CPU.
    """

    def __init__(self, polygons: Sequence[Sequence[PolygonType]]) -> None:
        """
        Raises:
            ValueError: naming the instance (and polygon) at fault when an instance is not a
                list of polygons or a polygon has an odd number of coordinates or fewer than 6.
        """
        if not isinstance(polygons, (list, tuple)):
            raise ValueError(
                "PolygonMasks expects a list (one entry per instance) of lists of polygons, "
                f"got {type(polygons).__name__}."
            )
        self.polygons: List[List[np.ndarray]] = []
        for i, instance in enumerate(polygons):
            if not isinstance(instance, (list, tuple)):
                raise ValueError(
                    f"PolygonMasks: instance {i} must be a list of polygons, each a flat [x0, y0, x1, y1, ...]; "
                    f"got {type(instance).__name__}. Wrap a single polygon in a list: [polygon]."
                )
            if any(isinstance(p, Number) for p in instance):
                raise ValueError(
                    f"PolygonMasks: instance {i} is a flat list of numbers, not a list of polygons. "
                    "Wrap a single polygon in a list: [polygon]."
                )
            self.polygons.append(
                [_as_polygon(p, f"PolygonMasks: instance {i}, polygon {j}") for j, p in enumerate(instance)]
            )

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def to(self, *args: Any, **kwargs: Any) -> "PolygonMasks":
        """Polygons live on the CPU as numpy arrays: returns ``self`` unchanged."""
        return self

    def get_bounding_boxes(self) -> Boxes:
        """Tight XYXY boxes around all polygons of each instance; (0, 0, 0, 0) for an instance without polygons."""
        boxes = torch.zeros(len(self), 4, dtype=torch.float32)
        for i, polygons in enumerate(self.polygons):
            if polygons:
                points = np.concatenate(polygons).reshape(-1, 2)
                boxes[i] = torch.from_numpy(np.concatenate([points.min(axis=0), points.max(axis=0)]))
        return Boxes(boxes)

    def nonempty(self) -> torch.Tensor:
        """Bool (N,): True for instances with at least one polygon."""
        return torch.tensor([len(polygons) > 0 for polygons in self.polygons], dtype=torch.bool)

    def area(self) -> torch.Tensor:
        """Int64 (N,): rasterized pixel count of each instance (union of its polygons, pycocotools).

        Each instance is rasterized in its own frame (shifted by whole pixels), so coordinates
        outside any image, including negative ones, still count.
        """
        areas = []
        for polygons in self.polygons:
            if not polygons:
                areas.append(0)
                continue
            points = np.concatenate(polygons).reshape(-1, 2)
            origin = np.floor(points.min(axis=0))
            width, height = (np.ceil(points.max(axis=0) - origin) + 1).astype(int)
            if width * height > _MAX_AREA_CANVAS_PIXELS:
                raise ValueError(
                    f"PolygonMasks.area: an instance spans {width}x{height} pixels, too large to rasterize; its "
                    "polygon coordinates are far outside any image. Fix or drop this annotation."
                )
            shifted = [(p.reshape(-1, 2) - origin).reshape(-1) for p in polygons]
            areas.append(int(mask_util.area(_polygons_to_rle(shifted, int(height), int(width)))))
        return torch.tensor(areas, dtype=torch.int64)

    def crop_and_resize(self, boxes: torch.Tensor, mask_size: int) -> torch.Tensor:
        """Rasterize instance ``i`` inside ``boxes[i]`` at a resolution of mask_size x mask_size.

        Box ``(x0, y0, x1, y1)`` is mapped onto the grid ``[0, M] x [0, M]``; sides shorter
        than 0.1 px count as 0.1 px.

        Args:
            boxes: float (N, 4) XYXY absolute pixels, one box per instance.
            mask_size: M.

        Returns:
            float32 (N, M, M) tensor of 0/1 on ``boxes.device``.
        """
        if len(boxes) != len(self):
            raise ValueError(
                f"crop_and_resize got {len(boxes)} boxes for {len(self)} instances; pass one box per instance."
            )
        box_array = boxes.detach().to("cpu", torch.float64).numpy()
        flat = [p for polygons in self.polygons for p in polygons]
        if not flat:
            return torch.zeros(len(self), mask_size, mask_size, dtype=torch.float32, device=boxes.device)
        lengths = np.array([p.size for p in flat])
        owner_of_polygon = np.repeat(np.arange(len(self)), [len(polygons) for polygons in self.polygons])
        owner_of_point = np.repeat(owner_of_polygon, lengths // 2)
        origin = box_array[owner_of_point, :2]
        side = np.maximum(box_array[owner_of_point, 2:] - origin, _MIN_BOX_SIDE)
        points = (np.concatenate(flat).reshape(-1, 2) - origin) * (mask_size / side)
        transformed = np.split(points.reshape(-1), np.cumsum(lengths)[:-1])
        masks = np.zeros((len(self), mask_size, mask_size), dtype=bool)
        start = 0
        for i, polygons in enumerate(self.polygons):
            if polygons:
                in_box = transformed[start : start + len(polygons)]
                masks[i] = mask_util.decode(_polygons_to_rle(in_box, mask_size, mask_size))
            start += len(polygons)
        return torch.from_numpy(masks).to(device=boxes.device, dtype=torch.float32)

    def __getitem__(self, item: Union[int, slice, List[int], torch.Tensor, np.ndarray]) -> "PolygonMasks":
        """Select instances by int (gives 1 instance), slice, index list/array/tensor or bool mask."""
        if isinstance(item, (int, np.integer)):
            return PolygonMasks([self.polygons[item]])
        if isinstance(item, slice):
            return PolygonMasks(self.polygons[item])
        return PolygonMasks([self.polygons[i] for i in _selected_indices(item, len(self))])

    def __len__(self) -> int:
        return len(self.polygons)

    def __iter__(self) -> Iterator[List[np.ndarray]]:
        """Yield the list of polygons of each instance."""
        yield from self.polygons

    @classmethod
    def cat(cls, polymasks_list: List["PolygonMasks"]) -> "PolygonMasks":
        """Concatenate the instances of several :class:`PolygonMasks`."""
        if not all(isinstance(m, PolygonMasks) for m in polymasks_list):
            raise TypeError(f"PolygonMasks.cat expects PolygonMasks, got {[type(m).__name__ for m in polymasks_list]}.")
        return cls([polygons for masks in polymasks_list for polygons in masks.polygons])

    def __repr__(self) -> str:
        return f"PolygonMasks(num_instances={len(self)})"


class BitMasks:
    """Masks of N instances as one bool tensor of shape (N, H, W) (``tensor``), image-sized."""

    def __init__(self, tensor: Union[torch.Tensor, np.ndarray]) -> None:
        """
        Args:
            tensor: (N, H, W) masks; nonzero means foreground. Cast to bool on its own device.

        Raises:
            ValueError: if the input is not 3-dimensional.
        """
        device = tensor.device if isinstance(tensor, torch.Tensor) else torch.device("cpu")
        tensor = torch.as_tensor(tensor, device=device)
        if tensor.dim() != 3:
            raise ValueError(f"BitMasks expects a tensor of shape (N, H, W), got shape {tuple(tensor.shape)}.")
        self.tensor = tensor.to(torch.bool)

    @property
    def image_size(self) -> Tuple[int, int]:
        """(H, W) of the masks."""
        return tuple(self.tensor.shape[1:])

    @property
    def device(self) -> torch.device:
        return self.tensor.device

    def to(self, *args: Any, **kwargs: Any) -> "BitMasks":
        return BitMasks(self.tensor.to(*args, **kwargs))

    @classmethod
    def from_polygon_masks(
        cls, polygon_masks: Union[PolygonMasks, Sequence[Sequence[PolygonType]]], height: int, width: int
    ) -> "BitMasks":
        """Rasterize polygons (a :class:`PolygonMasks` or its list-of-lists) on a height x width canvas."""
        if not isinstance(polygon_masks, PolygonMasks):
            polygon_masks = PolygonMasks(polygon_masks)
        masks = np.zeros((len(polygon_masks), height, width), dtype=bool)
        for i, polygons in enumerate(polygon_masks.polygons):
            masks[i] = mask_util.decode(_polygons_to_rle(polygons, height, width))
        return cls(torch.from_numpy(masks))

    def crop_and_resize(self, boxes: torch.Tensor, mask_size: int) -> torch.Tensor:
        """Crop mask ``i`` to ``boxes[i]`` and resample it to mask_size x mask_size (RoIAlign, aligned=True).

        Args:
            boxes: float (N, 4) XYXY absolute pixels, one box per mask.
            mask_size: M.

        Returns:
            float32 (N, M, M) tensor in [0, 1] (the covered fraction of each cell, bilinearly
            sampled) on ``boxes.device``; threshold at 0.5 for a binary mask.
        """
        if len(boxes) != len(self):
            raise ValueError(f"crop_and_resize got {len(boxes)} boxes for {len(self)} masks; pass one box per mask.")
        boxes = boxes.to(torch.float32)
        batch_index = torch.arange(len(boxes), device=boxes.device, dtype=torch.float32)[:, None]
        rois = torch.cat([batch_index, boxes], dim=1)
        masks = self.tensor.to(device=boxes.device, dtype=torch.float32)[:, None]
        resized = roi_align(masks, rois, (mask_size, mask_size), spatial_scale=1.0, sampling_ratio=0, aligned=True)
        return resized.squeeze(1)

    def get_bounding_boxes(self) -> Boxes:
        """Tight XYXY boxes around each mask's foreground pixels; (0, 0, 0, 0) for an empty mask.

        A mask whose only foreground pixel is ``(i, j)`` gives the box ``(j, i, j + 1, i + 1)``.
        """
        height, width = self.image_size
        if height == 0 or width == 0:
            return Boxes(torch.zeros(len(self), 4, dtype=torch.float32, device=self.device))
        rows = self.tensor.any(dim=2).to(torch.uint8)  # (N, H)
        cols = self.tensor.any(dim=1).to(torch.uint8)  # (N, W)
        y0 = rows.argmax(dim=1)
        y1 = height - rows.flip(1).argmax(dim=1)
        x0 = cols.argmax(dim=1)
        x1 = width - cols.flip(1).argmax(dim=1)
        boxes = torch.stack([x0, y0, x1, y1], dim=1).to(torch.float32)
        boxes[~self.nonempty()] = 0
        return Boxes(boxes)

    def nonempty(self) -> torch.Tensor:
        """Bool (N,): True for masks with at least one foreground pixel."""
        return self.tensor.flatten(1).any(dim=1)

    def area(self) -> torch.Tensor:
        """Int64 (N,): foreground pixel count of each mask."""
        return self.tensor.flatten(1).sum(dim=1)

    def __getitem__(self, item: Union[int, slice, torch.Tensor, List[int]]) -> "BitMasks":
        """Select masks by int (gives 1 mask), slice, index list/tensor or bool mask."""
        if isinstance(item, (int, np.integer)):
            return BitMasks(self.tensor[item].unsqueeze(0))
        selected = self.tensor[item]
        if selected.dim() != 3:
            raise IndexError(
                f"Indexing BitMasks with {item!r} gave shape {tuple(selected.shape)}; "
                "use an int, slice, bool mask or index list."
            )
        return BitMasks(selected)

    def __len__(self) -> int:
        return self.tensor.shape[0]

    def __iter__(self) -> Iterator[torch.Tensor]:
        """Yield each mask as a bool (H, W) tensor."""
        yield from self.tensor

    @classmethod
    def cat(cls, bitmasks_list: List["BitMasks"]) -> "BitMasks":
        """Concatenate masks of the same (H, W)."""
        if not all(isinstance(m, BitMasks) for m in bitmasks_list):
            raise TypeError(f"BitMasks.cat expects BitMasks, got {[type(m).__name__ for m in bitmasks_list]}.")
        return cls(torch.cat([m.tensor for m in bitmasks_list], dim=0))

    def __repr__(self) -> str:
        return f"BitMasks(num_instances={len(self)}, image_size={self.image_size})"
