"""Export any registered instance dataset back to a COCO instances json (the evaluator's ground truth).

The inverse of :func:`seg_research.data.datasets.load_coco_json`: contiguous category ids
``0..K-1`` go back to the dataset's own ids through the inverse of the metadata
``thing_dataset_id_to_contiguous_id`` (identity when the metadata has none), boxes go back
to XYWH absolute pixels, and each annotation gets the ``area`` COCOeval uses for its
small/medium/large ranges: the rasterized pixel count of its segmentation (polygons or
RLE), or the box area when it has none.
"""
from __future__ import annotations

import datetime
import logging
from typing import Any, Callable, Dict, List

import pycocotools.mask as mask_util

from seg_research.data.catalog import DatasetCatalog, MetadataCatalog
from seg_research.data.errors import DataError
from seg_research.structures import BoxMode, PolygonMasks
from seg_research.utils.file_io import PathManager, atomic_write_json

__all__ = ["convert_to_coco_dict", "convert_to_coco_json", "dataset_id_mapper"]

logger = logging.getLogger(__name__)


def dataset_id_mapper(dataset_name: str) -> Callable[[int], int]:
    """A function from contiguous class id (0..K-1) to the dataset's own category id.

    Uses the inverse of ``MetadataCatalog.get(dataset_name).thing_dataset_id_to_contiguous_id``;
    without that key the ids are the same. The returned function raises ``ValueError`` for
    an id outside ``0..K-1`` (K = ``len(thing_classes)``).
    """
    meta = MetadataCatalog.get(dataset_name)
    num_classes = len(meta.get("thing_classes", []))
    forward = meta.get("thing_dataset_id_to_contiguous_id")
    inverse = {int(c): int(d) for d, c in forward.items()} if forward else {i: i for i in range(num_classes)}

    def to_dataset_id(contiguous_id: int) -> int:
        try:
            return inverse[int(contiguous_id)]
        except KeyError:
            raise ValueError(
                f"Class id {contiguous_id} is not a contiguous id of dataset '{dataset_name}' (valid: "
                f"0..{num_classes - 1}, from its thing_classes). Check MODEL.ROI_HEADS.NUM_CLASSES and the "
                f"dataset's metadata."
            ) from None

    return to_dataset_id


def _rle_for_json(rle: Dict[str, Any]) -> Dict[str, Any]:
    """The RLE with compressed ``counts`` as ``str`` (bytes are not JSON); uncompressed lists unchanged."""
    counts = rle["counts"]
    return {"size": list(rle["size"]), "counts": counts.decode("utf-8") if isinstance(counts, bytes) else counts}


def _segmentation_area(segm: Any, height: int, width: int) -> int:
    """Pixel count of a segmentation: a list of flat polygons (their union) or an RLE dict."""
    if isinstance(segm, dict):
        rle = segm
        if isinstance(rle["counts"], list):
            rle = mask_util.frPyObjects(rle, height, width)
        return int(mask_util.area(rle))
    return int(PolygonMasks([segm]).area()[0])


def _annotation_to_coco(anno: Dict[str, Any], record: Dict[str, Any], to_dataset_id: Callable[[int], int],
                        dataset_name: str) -> Dict[str, Any]:
    """One COCO annotation (without ``id``) from one dataset-dict annotation of ``record``."""
    image_id = record["image_id"]
    if "bbox" not in anno or "bbox_mode" not in anno:
        raise DataError(f"An annotation of dataset '{dataset_name}' has no 'bbox'/'bbox_mode'; every annotation needs "
                        f"both (bbox_mode=BoxMode.XYWH_ABS or XYXY_ABS) to be exported to COCO.", record=image_id)
    try:
        bbox = [float(v) for v in BoxMode.convert(list(anno["bbox"]), anno["bbox_mode"], BoxMode.XYWH_ABS)]
        category_id = to_dataset_id(anno["category_id"])
    except ValueError as e:
        raise DataError(f"Cannot export an annotation of dataset '{dataset_name}' to COCO: {e}", record=image_id) from e
    out: Dict[str, Any] = {
        "image_id": image_id,
        "bbox": bbox,
        "category_id": category_id,
        "iscrowd": int(anno.get("iscrowd", 0)),
    }
    segm = anno.get("segmentation")
    if segm:
        out["segmentation"] = _rle_for_json(segm) if isinstance(segm, dict) else [list(map(float, p)) for p in segm]
        out["area"] = float(_segmentation_area(segm, record["height"], record["width"]))
    else:
        out["area"] = bbox[2] * bbox[3]
    return out


def convert_to_coco_dict(dataset_name: str) -> Dict[str, Any]:
    """The COCO instances json (as a dict) of a registered instance dataset.

    Args:
        dataset_name: a name in ``DatasetCatalog`` whose dicts have ``file_name, height,
            width, image_id`` and ``annotations`` (``bbox, bbox_mode, category_id``
            contiguous, optional ``segmentation`` polygons or RLE, ``iscrowd``); its
            metadata must have ``thing_classes``.

    Returns:
        ``{"info", "images", "annotations", "categories", "licenses"}``: categories
        ``{id, name}`` with the dataset's ids; annotations with ``id`` 1..N in dataset order,
        ``bbox`` XYWH absolute, ``area`` (segmentation pixel count, else box area),
        ``iscrowd``, ``segmentation`` when present (compressed RLE ``counts`` as str).

    Raises:
        ValueError: the metadata has no ``thing_classes``.
        DataError: a record without ``image_id``, an annotation without box, with a
            relative box mode, or with a ``category_id`` outside ``0..K-1``.
    """
    records = DatasetCatalog.get(dataset_name)
    meta = MetadataCatalog.get(dataset_name)
    thing_classes = meta.get("thing_classes")
    if not thing_classes:
        raise ValueError(f"Dataset '{dataset_name}' has no thing_classes in its metadata; set "
                         f"MetadataCatalog.get('{dataset_name}').thing_classes before exporting it to COCO.")
    to_dataset_id = dataset_id_mapper(dataset_name)
    categories = [{"id": to_dataset_id(i), "name": name} for i, name in enumerate(thing_classes)]
    images: List[Dict[str, Any]] = []
    annotations: List[Dict[str, Any]] = []
    for index, record in enumerate(records):
        if "image_id" not in record:
            raise DataError(f"Record {index} of dataset '{dataset_name}' has no 'image_id'; give every dataset dict "
                            f"a unique image_id.", file_name=record.get("file_name"), record=index)
        images.append({"id": record["image_id"], "width": int(record["width"]), "height": int(record["height"]),
                       "file_name": str(record["file_name"])})
        for anno in record.get("annotations", []):
            annotation = _annotation_to_coco(anno, record, to_dataset_id, dataset_name)
            annotation["id"] = len(annotations) + 1
            annotations.append(annotation)
    logger.info(f"Converted dataset '{dataset_name}' to COCO format: {len(images)} images, "
                f"{len(annotations)} annotations.")
    info = {"date_created": str(datetime.datetime.now()),
            "description": f"COCO json generated by seg_research from dataset '{dataset_name}'."}
    return {"info": info, "images": images, "annotations": annotations, "categories": categories, "licenses": []}


def convert_to_coco_json(dataset_name: str, output_file: str, allow_cached: bool = True) -> None:
    """Write :func:`convert_to_coco_dict` of ``dataset_name`` to ``output_file`` (atomically).

    With ``allow_cached`` an existing ``output_file`` is kept as it is (delete it when the
    dataset changed); otherwise it is regenerated.
    """
    if allow_cached and PathManager.exists(output_file):
        logger.info(f"Using the cached COCO json of dataset '{dataset_name}' at {output_file} "
                    f"(delete it to regenerate after changing the dataset).")
        return
    atomic_write_json(output_file, convert_to_coco_dict(dataset_name))
    logger.info(f"Wrote the COCO json of dataset '{dataset_name}' to {output_file}")
