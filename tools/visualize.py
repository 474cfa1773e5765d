#!/usr/bin/env python
"""Look at ground truth, training inputs or saved predictions, as one PNG per image.

    # ground truth of DATASETS.TRAIN, as registered
    python tools/visualize.py --source annotation --config-file F --output-dir D [--num N]
    # what the model trains on: DATASETS.TRAIN after the training mapper and augmentations
    python tools/visualize.py --source dataloader --config-file F --output-dir D [--num N]
    # the evaluators' predictions beside the ground truth: ground truth on the left, then one
    # panel per prediction file (instances, semantic, panoptic)
    python tools/visualize.py --predictions OUTPUT_DIR/inference/shapes_val_sem_seg --output-dir D

Prediction files, found by name in a --predictions folder or given as paths:
  coco_instances_results.json  COCOEvaluator: [{image_id, category_id, bbox (XYWH), score, segmentation}]
  sem_seg_predictions.json     SemSegEvaluator (TEST.SAVE_PREDICTIONS True): RLE per image and class
  panoptic_predictions.json    COCO panoptic json ({annotations: [{image_id, file_name, segments_info}]})
                               with its PNGs in the folder of the same name beside it
Category ids are the dataset's, mapped back with the metadata of --dataset.
"""
import argparse
import functools
import itertools
import json
import logging
import os
import sys
from collections import defaultdict
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

import seg_research.data.datasets.builtin  # noqa: F401  (registers builtin datasets)
from seg_research.config import get_cfg
from seg_research.data import DataError, DatasetCatalog, MetadataCatalog
from seg_research.data.build import build_detection_train_loader
from seg_research.data.catalog import Metadata
from seg_research.data.datasets.coco_panoptic import convert_segment
from seg_research.data.detection_utils import read_image, read_panoptic_ids
from seg_research.evaluation.coco_evaluation import RESULTS_FILE
from seg_research.evaluation.panoptic_evaluation import PANOPTIC_PREDICTIONS_FILE
from seg_research.evaluation.sem_seg_evaluation import SEM_SEG_PREDICTIONS_FILE
from seg_research.structures import Boxes, BoxMode, Instances, rle_to_bitmask
from seg_research.utils.logger import setup_logger
from seg_research.utils.visualizer import VisImageWriter, Visualizer

_PANOPTIC_MAPS = ("thing_dataset_id_to_contiguous_id", "stuff_dataset_id_to_contiguous_id")
_PANEL_GAP = 4  # white pixels between side-by-side panels
GROUND_TRUTH_TITLE = "ground truth"

logger = logging.getLogger("seg_research.visualize")

#: (source image file, function drawing it) pairs, and how many there are
Drawings = Tuple[Iterable[Tuple[str, Callable[[], np.ndarray]]], int]


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--source", choices=["annotation", "dataloader"],
                      help="draw DATASETS.TRAIN as registered (annotation) or as the training loader maps it")
    mode.add_argument("--predictions", nargs="+", metavar="PATH",
                      help="OUTPUT_DIR/inference/<dataset> folder(s), OUTPUT_DIR/inference (its one dataset, or "
                           "--dataset's) or prediction files")
    parser.add_argument("--config-file", default="", metavar="FILE", help="config (needed with --source)")
    parser.add_argument("--dataset", help="registered dataset of --predictions (default: the folder's name)")
    parser.add_argument("--output-dir", required=True, help="where the PNGs go")
    parser.add_argument("--num", type=int, default=None,
                        help="at most this many images (default: all; one pass over the data with dataloader)")
    parser.add_argument("--conf-threshold", type=float, default=0.5, help="lowest score of instances drawn")
    parser.add_argument("--show", action="store_true", help="also open each drawing in an image viewer")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides as KEY VALUE pairs")
    args = parser.parse_args(argv)
    if args.source and not args.config_file:
        parser.error("--source needs --config-file (DATASETS.TRAIN and INPUT.* come from it).")
    return args


class _Writer(VisImageWriter):
    """Also opens each drawing in an image viewer with ``--show`` when a display exists."""

    def __init__(self, output_dir: str, show: bool) -> None:
        super().__init__(output_dir)
        self.show = show and bool(os.environ.get("DISPLAY"))
        if show and not self.show:
            logger.warning("--show: no display ($DISPLAY is unset); only writing files.")

    def write(self, drawing: np.ndarray, source_file: str) -> str:
        path = super().write(drawing, source_file)
        if self.show:
            Image.fromarray(drawing).show(title=os.path.basename(path))
        return path


def _to_rgb(image: torch.Tensor, input_format: str) -> np.ndarray:
    """A mapped ``image`` (C, H, W) in ``input_format`` as (H, W, C) RGB (or gray) uint8."""
    array = image.permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(array[:, :, ::-1]) if input_format == "BGR" else array


def _setup_cfg(args: argparse.Namespace):
    cfg = get_cfg()
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts or [])
    cfg.freeze()
    return cfg


def _annotation_drawings(cfg, num: Optional[int]) -> Drawings:
    """(file_name, draw) per record of each DATASETS.TRAIN dataset, as registered."""
    records = [(name, d) for name in cfg.DATASETS.TRAIN for d in DatasetCatalog.get(name)][:num]

    def draw(name: str, record: Dict[str, Any]) -> np.ndarray:
        vis = Visualizer(read_image(record["file_name"], format="RGB"), MetadataCatalog.get(name))
        return vis.draw_dataset_dict(record).get_image()

    return [(r["file_name"], functools.partial(draw, name, r)) for name, r in records], len(records)


def _dataloader_drawings(cfg, num: Optional[int]) -> Drawings:
    """(file_name, draw) per mapped training dict: the augmented image and its targets."""
    loader = build_detection_train_loader(cfg)
    num = len(loader.dataset) if num is None else num
    meta = MetadataCatalog.get(cfg.DATASETS.TRAIN[0])

    def draw(mapped: Dict[str, Any]) -> np.ndarray:
        vis = Visualizer(_to_rgb(mapped["image"], cfg.INPUT.FORMAT), meta)
        if "instances" in mapped:
            vis.draw_gt_instances(mapped["instances"])
        if "sem_seg" in mapped:
            vis.draw_sem_seg(mapped["sem_seg"], alpha=0.5)
        return vis.output.get_image()

    mapped_dicts = itertools.islice((mapped for batch in loader for mapped in batch), num)
    return ((m["file_name"], functools.partial(draw, m)) for m in mapped_dicts), num


# ---------------------------------------------------------------------------- predictions
def _key(entry: Dict[str, Any]) -> Any:
    """What pairs a prediction with its record: ``image_id``, else ``file_name``."""
    return entry["image_id"] if entry.get("image_id") is not None else entry.get("file_name")


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise DataError(f"Cannot read the prediction file ({e}).", file_name=path) from e


def _inverse_map(meta: Metadata, key: str, path: str) -> Callable[[int], int]:
    """dataset category id -> contiguous id through ``meta.<key>`` (identity without it)."""
    mapping = meta.get(key)

    def to_contiguous(category_id: int) -> int:
        if not mapping:
            return int(category_id)
        if category_id not in mapping:
            raise DataError(f"category_id {category_id} is not in the metadata's {key} "
                            f"{sorted(mapping)}; is --dataset the dataset these predictions were made on?",
                            file_name=path)
        return int(mapping[category_id])

    return to_contiguous


class _InstancePanel:
    """Detections of COCOEvaluator's results json (``score >= threshold``)."""

    def __init__(self, path: str, meta: Metadata, threshold: float) -> None:
        self.title = f"prediction, score \u2265 {threshold:g}"
        self.to_contiguous = _inverse_map(meta, "thing_dataset_id_to_contiguous_id", path)
        self.by_image: Dict[Any, List[dict]] = defaultdict(list)
        for r in _read_json(path):
            if r["score"] >= threshold:
                self.by_image[r["image_id"]].append(r)

    def draw(self, vis: Visualizer, record: Dict[str, Any]) -> None:
        results = self.by_image.get(_key(record), [])
        instances = Instances(vis.input_size)
        xywh = np.asarray([r["bbox"] for r in results], dtype=np.float64).reshape(-1, 4)
        instances.pred_boxes = Boxes(BoxMode.convert(xywh, BoxMode.XYWH_ABS, BoxMode.XYXY_ABS))
        instances.scores = torch.tensor([r["score"] for r in results], dtype=torch.float32)
        instances.pred_classes = torch.tensor([self.to_contiguous(r["category_id"]) for r in results],
                                              dtype=torch.int64)
        if results and all("segmentation" in r for r in results):
            instances.pred_masks = torch.from_numpy(np.stack([rle_to_bitmask(r["segmentation"]) for r in results]))
        vis.draw_instance_predictions(instances)


class _SemSegPanel:
    """Class maps of SemSegEvaluator's ``sem_seg_predictions.json`` (one RLE per image and class)."""

    title = "prediction (semantic)"

    def __init__(self, path: str, meta: Metadata) -> None:
        self.path, self.meta = path, meta
        self.to_contiguous = _inverse_map(meta, "stuff_dataset_id_to_contiguous_id", path)
        self.by_image: Dict[Any, List[dict]] = defaultdict(list)
        for r in _read_json(path):
            self.by_image[_key(r)].append(r)

    def draw(self, vis: Visualizer, record: Dict[str, Any]) -> None:
        entries = self.by_image.get(_key(record))
        if not entries:
            logger.warning(f"No semantic prediction for {record['file_name']} in {self.path}.")
            return
        labels = np.full(vis.input_size, self.meta.get("ignore_label", 255), dtype=np.int64)
        for entry in entries:
            labels[rle_to_bitmask(entry["segmentation"])] = self.to_contiguous(entry["category_id"])
        vis.draw_sem_seg(labels)


class _PanopticPanel:
    """COCO panoptic predictions: json ``annotations`` and the PNGs of the folder named like the json."""

    title = "prediction (panoptic)"

    def __init__(self, path: str, meta: Metadata) -> None:
        missing = [k for k in _PANOPTIC_MAPS if meta.get(k) is None]
        if missing:
            raise ValueError(f"Panoptic predictions {path} need the metadata {missing} of a panoptic dataset; "
                             f"pass --dataset <a dataset registered with register_coco_panoptic>.")
        self.path, self.meta = path, meta.as_dict()
        self.png_root = os.path.splitext(path)[0]
        self.by_image = {ann["image_id"]: ann for ann in _read_json(path)["annotations"]}

    def draw(self, vis: Visualizer, record: Dict[str, Any]) -> None:
        ann = self.by_image.get(_key(record))
        if ann is None:
            logger.warning(f"No panoptic prediction for {record['file_name']} in {self.path}.")
            return
        segments = [convert_segment(s, self.meta, self.path, ann["image_id"]) for s in ann["segments_info"]]
        for seg, raw in zip(segments, ann["segments_info"], strict=True):
            if "score" in raw:
                seg["score"] = raw["score"]
        vis.draw_panoptic_seg(read_panoptic_ids(os.path.join(self.png_root, ann["file_name"])), segments)


#: prediction file name -> panel factory (path, metadata, args)
_PANELS: Dict[str, Callable[[str, Metadata, argparse.Namespace], Any]] = {
    RESULTS_FILE: lambda path, meta, args: _InstancePanel(path, meta, args.conf_threshold),
    SEM_SEG_PREDICTIONS_FILE: lambda path, meta, args: _SemSegPanel(path, meta),
    PANOPTIC_PREDICTIONS_FILE: lambda path, meta, args: _PanopticPanel(path, meta),
}


def _files_in(folder: str) -> List[str]:
    return [os.path.join(folder, name) for name in _PANELS if os.path.isfile(os.path.join(folder, name))]


def _prediction_files(paths: List[str], dataset: Optional[str] = None) -> List[str]:
    """The prediction files of ``paths``: files, ``OUTPUT_DIR/inference/<dataset>`` folders, or
    ``OUTPUT_DIR/inference`` itself, whose one dataset folder (or the ``dataset`` one) is used."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            found = _files_in(path)
            if not found:  # OUTPUT_DIR/inference: the evaluators write one folder per dataset
                subfolders = sorted(name for name in os.listdir(path)
                                    if os.path.isdir(os.path.join(path, name)) and _files_in(os.path.join(path, name)))
                if dataset in subfolders:
                    subfolders = [dataset]
                if len(subfolders) > 1:
                    raise FileNotFoundError(f"--predictions '{path}' holds predictions of several datasets "
                                            f"{subfolders}; pass one folder ({os.path.join(path, subfolders[0])}) "
                                            "or --dataset NAME.")
                found = _files_in(os.path.join(path, subfolders[0])) if subfolders else []
            files += found
        elif os.path.basename(path) in _PANELS and os.path.isfile(path):
            files.append(path)
        else:
            raise FileNotFoundError(f"--predictions '{path}' is neither a folder nor one of the prediction files "
                                    f"{sorted(_PANELS)}.")
    if not files:
        raise FileNotFoundError(f"No prediction file ({', '.join(sorted(_PANELS))}) in {paths} or in a dataset folder "
                                "below. Evaluate with tools/train_net.py --eval-only first (TEST.SAVE_PREDICTIONS True).")
    return files


def _prediction_drawings(args: argparse.Namespace) -> Drawings:
    """(file_name, draw) per record of --dataset: ground truth | one panel per prediction file."""
    files = _prediction_files(args.predictions, args.dataset)
    dataset = args.dataset or os.path.basename(os.path.normpath(os.path.dirname(files[0])))
    records = DatasetCatalog.get(dataset)
    meta = MetadataCatalog.get(dataset)
    panels = [_PANELS[os.path.basename(path)](path, meta, args) for path in files]
    logger.info(f"Drawing ground truth of '{dataset}' | " + " | ".join(files))

    def draw(record: Dict[str, Any]) -> np.ndarray:
        image = read_image(record["file_name"], format="RGB")
        drawings = [_titled(Visualizer(image, meta).draw_dataset_dict(record).get_image(), GROUND_TRUTH_TITLE)]
        for panel in panels:
            vis = Visualizer(image, meta)
            panel.draw(vis, record)
            drawings.append(_titled(vis.output.get_image(), panel.title))
        return _side_by_side(drawings)

    records = records[:args.num]
    return [(r["file_name"], functools.partial(draw, r)) for r in records], len(records)


def _titled(image: np.ndarray, title: str) -> np.ndarray:
    """``image`` (H, W, 3) uint8 RGB under a white strip with ``title`` in black: (H + strip, W, 3).

    The font scales with the panel width (at most 24 px, W / 16 on small images) and shrinks further
    until the whole caption fits, so that a threshold at its end is never cut off."""
    height, width = image.shape[:2]
    size = max(6, min(24, width // 16))
    font = ImageFont.load_default(size=size)
    while size > 6 and font.getlength(title) > width - 8:
        size -= 1
        font = ImageFont.load_default(size=size)
    strip = Image.new("RGB", (width, size + 8), (255, 255, 255))
    ImageDraw.Draw(strip).text((4, 4), title, fill=(0, 0, 0), font=font)
    return np.concatenate([np.asarray(strip), image], axis=0)


def _side_by_side(images: List[np.ndarray]) -> np.ndarray:
    gap = np.full((images[0].shape[0], _PANEL_GAP, 3), 255, dtype=np.uint8)
    parts = [p for image in images for p in (gap, image)][1:]
    return np.concatenate(parts, axis=1)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.predictions:
        drawings, total = _prediction_drawings(args)
    elif args.source == "annotation":
        drawings, total = _annotation_drawings(_setup_cfg(args), args.num)
    else:
        drawings, total = _dataloader_drawings(_setup_cfg(args), args.num)
    writer = _Writer(args.output_dir, args.show)
    written = failed = 0
    for file_name, draw in tqdm(drawings, desc="visualize", unit="image", total=total):
        try:
            writer.write(draw(), file_name)
            written += 1
        except DataError as e:
            logger.error(f"Skipped {file_name}: {e}")
            failed += 1
    logger.info(f"Wrote {written} images to {args.output_dir}" + (f"; {failed} failed" if failed else ""))
    return 1 if failed and not written else 0


if __name__ == "__main__":
    setup_logger(name="seg_research")
    sys.exit(main())
