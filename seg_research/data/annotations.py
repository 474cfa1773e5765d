"""Instance annotations of a dataset dict as training targets: transform them with the image's
transforms and build ``Instances`` (``gt_boxes``, ``gt_classes``, ``gt_masks``).

Conventions: boxes are XYXY absolute pixels after :func:`transform_instance_annotations`;
image sizes are (height, width); ``category_id`` is a contiguous 0-based class id.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple, Union

import numpy as np
import torch
from fvcore.transforms.transform import Transform, TransformList

from ..structures import BitMasks, Boxes, BoxMode, Instances, PolygonMasks, polygons_to_bitmask, rle_to_bitmask
from .errors import DataError

__all__ = ["transform_instance_annotations", "annotations_to_instances", "filter_empty_instances"]


def transform_instance_annotations(
    annotation: Dict[str, Any], transforms: Union[Transform, Sequence[Transform]], image_size: Tuple[int, int]
) -> Dict[str, Any]:
    """Apply ``transforms`` to one instance annotation.

    Args:
        annotation: one entry of a dataset dict's ``annotations``.
        transforms: the transforms applied to the image (a Transform or a list of them).
        image_size: (height, width) of the transformed image.

    Returns:
        A new dict: ``bbox`` as float64 np.ndarray (4,) in XYXY_ABS, clipped to the image, with
        ``bbox_mode`` XYXY_ABS; ``segmentation`` polygons transformed (a list of flat float64
        arrays; polygons cropped away are dropped), or an RLE/np.ndarray mask decoded and
        transformed into a bool HxW np.ndarray.

    Raises:
        DataError: for a segmentation that is neither polygons, RLE nor an array, or a mask that
            does not match the image after transformation.
    """
    if isinstance(transforms, (list, tuple)):
        transforms = TransformList(transforms)
    annotation = dict(annotation)
    bbox = np.asarray(BoxMode.convert(annotation["bbox"], annotation["bbox_mode"], BoxMode.XYXY_ABS), dtype=np.float64)
    bbox = transforms.apply_box(bbox[None, :])[0]
    height, width = image_size
    annotation["bbox"] = np.clip(bbox, 0, [width, height, width, height])
    annotation["bbox_mode"] = BoxMode.XYXY_ABS

    if "segmentation" in annotation:
        segm = annotation["segmentation"]
        if isinstance(segm, list):
            # copies: transforms modify coordinates in place
            polygons = [p.reshape(-1, 2).copy() for p in _instance_polygons(annotation).polygons[0]]
            annotation["segmentation"] = [p.reshape(-1) for p in transforms.apply_polygons(polygons)]
        else:
            mask = transforms.apply_segmentation(_mask_array(segm, annotation))
            _check_mask_size(mask, image_size, annotation)
            annotation["segmentation"] = mask.astype(bool)
    return annotation


def _mask_array(segm: Any, annotation: Dict[str, Any]) -> np.ndarray:
    """The HxW mask of an RLE dict or array segmentation."""
    if isinstance(segm, np.ndarray):
        return segm
    if not isinstance(segm, dict):
        raise DataError(
            f"Unsupported segmentation of type {type(segm).__name__}: use a list of flat polygons, an RLE dict "
            f"{{'size': [h, w], 'counts': ...}} or an HxW array.",
            record=annotation.get("id"),
        )
    try:
        return rle_to_bitmask(segm)
    except (ValueError, TypeError) as e:
        raise DataError(f"Malformed RLE segmentation: {e}", record=annotation.get("id")) from e


def _check_mask_size(mask: np.ndarray, image_size: Tuple[int, int], annotation: Dict[str, Any]) -> None:
    if tuple(mask.shape) != tuple(image_size):
        raise DataError(
            f"Instance mask has shape {tuple(mask.shape)} but the image is (height, width) = {tuple(image_size)}. "
            f"The RLE 'size' (or mask array) must match the image it annotates; regenerate this annotation.",
            record=annotation.get("id"),
        )


def _category_id(annotation: Dict[str, Any]) -> int:
    cid = annotation.get("category_id")
    if isinstance(cid, (bool, np.bool_)) or not isinstance(cid, (int, np.integer)) or cid < 0:
        raise DataError(
            f"category_id must be an int >= 0 (contiguous class id 0..K-1), got {cid!r}. Map dataset ids to "
            f"contiguous ones with metadata.thing_dataset_id_to_contiguous_id when loading the dataset.",
            record=annotation.get("id"),
        )
    return int(cid)


def _instance_bitmask(annotation: Dict[str, Any], image_size: Tuple[int, int]) -> np.ndarray:
    segm = annotation["segmentation"]
    if isinstance(segm, list):
        try:
            return polygons_to_bitmask(segm, *image_size)
        except ValueError as e:
            raise DataError(f"Invalid polygon segmentation: {e}", record=annotation.get("id")) from e
    mask = _mask_array(segm, annotation)
    _check_mask_size(mask, image_size, annotation)
    return mask.astype(bool)


def _instance_polygons(annotation: Dict[str, Any]) -> PolygonMasks:
    segm = annotation["segmentation"]
    if not isinstance(segm, list):
        raise DataError(
            f"mask_format='polygon' needs polygon segmentations, but this annotation's segmentation is a "
            f"{type(segm).__name__} (RLE or mask). Set INPUT.MASK_FORMAT to 'bitmask'.",
            record=annotation.get("id"),
        )
    try:
        return PolygonMasks([segm])
    except ValueError as e:
        raise DataError(f"Invalid polygon segmentation: {e}", record=annotation.get("id")) from e


def annotations_to_instances(
    annos: List[Dict[str, Any]], image_size: Tuple[int, int], mask_format: str = "polygon"
) -> Instances:
    """Build the training targets of one image.

    Args:
        annos: instance annotations (usually from :func:`transform_instance_annotations`).
        image_size: (height, width).
        mask_format: ``"polygon"`` (gt_masks is a PolygonMasks) or ``"bitmask"`` (a BitMasks
            rasterized from polygons, RLE or HxW arrays).

    Returns:
        Instances with ``gt_boxes`` (Boxes, XYXY_ABS, clipped to the image), ``gt_classes``
        (int64 (N,)) and, when every annotation has a ``segmentation``, ``gt_masks``.

    Raises:
        DataError: for a category_id that is not an int >= 0, a malformed segmentation, a mask
            whose size is not ``image_size``, or RLE masks with ``mask_format="polygon"``.
    """
    if mask_format not in ("polygon", "bitmask"):
        raise ValueError(f"mask_format must be 'polygon' or 'bitmask' (INPUT.MASK_FORMAT), got {mask_format!r}.")
    boxes = [BoxMode.convert(list(a["bbox"]), a["bbox_mode"], BoxMode.XYXY_ABS) for a in annos]
    instances = Instances(image_size)
    instances.gt_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    instances.gt_boxes.clip(image_size)
    instances.gt_classes = torch.tensor([_category_id(a) for a in annos], dtype=torch.int64)

    with_segm = ["segmentation" in a for a in annos]
    if annos and any(with_segm) and not all(with_segm):
        raise DataError(
            f"{with_segm.count(False)} of {len(annos)} annotations of this image lack 'segmentation' while the "
            f"others have one. Give every instance a mask, or drop the masks (MODEL.MASK_ON False).",
            record=annos[with_segm.index(False)].get("id"),
        )
    if annos and all(with_segm):
        if mask_format == "polygon":
            instances.gt_masks = PolygonMasks.cat([_instance_polygons(a) for a in annos])
        else:
            masks = np.stack([_instance_bitmask(a, image_size) for a in annos])
            instances.gt_masks = BitMasks(torch.from_numpy(masks))
    return instances


def filter_empty_instances(
    instances: Instances, by_box: bool = True, by_mask: bool = True, box_threshold: float = 1e-5
) -> Instances:
    """Drop instances whose box has a side <= ``box_threshold`` pixels or whose mask is empty."""
    keep = torch.ones(len(instances), dtype=torch.bool)
    if by_box:
        keep &= instances.gt_boxes.nonempty(threshold=box_threshold)
    if by_mask and instances.has("gt_masks"):
        keep &= instances.gt_masks.nonempty()
    return instances[keep]
