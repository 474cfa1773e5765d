"""Instance masks as polygons (:class:`PolygonMasks`) or dense bitmaps (:class:`BitMasks`), and RLE helpers.

One module per job: ``polygons`` (validation, rasterization), ``contours`` (a mask's outer polygons), ``rle`` (COCO RLE check, decode,
encode), ``crop`` (masks cropped to their boxes' frames: the mask head's targets), ``polygon_masks``
and ``bitmasks`` (the two containers). :class:`~seg_research.structures.ROIMasks` (predicted
box-relative masks) is in ``structures/roi_masks.py``.

Pixel convention (COCO's): polygon coordinates are continuous pixel coordinates in which
pixel ``(i, j)`` (row ``i``, column ``j``) covers ``[j, j + 1) x [i, i + 1)``. The square
polygon ``[0, 0, 2, 0, 2, 2, 0, 2]`` therefore rasterizes to the 2x2 block of pixels
``(0..1, 0..1)`` and has area 4. Rasterization is pycocotools' (``frPyObjects`` + ``decode``).
"""
from .bitmasks import BitMasks
from .contours import outer_polygons
from .polygon_masks import PolygonMasks
from .polygons import polygon_area, polygons_to_bitmask, rasterize_polygons_within_box
from .rle import bitmask_to_rle, check_rle, rle_to_bitmask

__all__ = ["BitMasks", "PolygonMasks", "polygons_to_bitmask", "rle_to_bitmask", "bitmask_to_rle", "check_rle",
           "polygon_area", "rasterize_polygons_within_box", "outer_polygons"]


def __getattr__(name: str):
    """``ROIMasks`` (structures.roi_masks imports this package), at detectron2's ``structures.masks`` path."""
    if name == "ROIMasks":
        from ..roi_masks import ROIMasks

        return ROIMasks
    raise AttributeError(f"module '{__name__}' has no attribute '{name}'")
