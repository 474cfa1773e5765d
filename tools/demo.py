#!/usr/bin/env python
"""Run a trained model on images and write its predictions drawn over them.

    python tools/demo.py --config-file configs/Shapes/demo.yaml --input img1.jpg photos/ 'more/*.png' \\
        --output vis/ [--confidence-threshold 0.5] MODEL.WEIGHTS output/demo/model_final.pth

Inputs are files, folders (their images, not recursive) and glob patterns; images of any
size, grayscale or RGBA (converted to RGB). Each overlay is written as
``<output>/<image name>.png`` (``<image name>_1.png``, ... for repeated names). An image
that cannot be read is reported by name and skipped; the exit code is 1 only when no image
could be processed. Class names and colours come from the metadata of DATASETS.TEST[0].
``MODEL.PRECISION bf16`` runs the model under bf16 autocast (on a CPU with native bf16 kernels,
else it says so and stays fp32); predictions are float32 either way.
"""
import argparse
import glob
import logging
import os
import sys
from typing import List, Optional

import seg_research.data.datasets.builtin  # noqa: F401  (registers builtin datasets)
from seg_research.config import get_cfg
from seg_research.data import DataError
from seg_research.data.detection_utils import read_image
from seg_research.engine import DefaultPredictor
from seg_research.utils.logger import setup_logger
from seg_research.utils.visualizer import VisImage, VisImageWriter, Visualizer

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

logger = logging.getLogger("seg_research.demo")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE", help="config of the trained model")
    parser.add_argument("--input", nargs="+", required=True, help="image files, folders or glob patterns")
    parser.add_argument("--output", required=True, help="folder for the overlays")
    parser.add_argument("--confidence-threshold", type=float, default=0.5,
                        help="lowest score of instances and panoptic segments drawn")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, e.g. MODEL.WEIGHTS model.pth")
    return parser.parse_args(argv)


def expand_inputs(inputs: List[str]) -> List[str]:
    """Files as given, folders as their image files (sorted), glob patterns as their matches (sorted)."""
    paths: List[str] = []
    for item in inputs:
        if os.path.isdir(item):
            paths += sorted(os.path.join(item, f) for f in os.listdir(item)
                            if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(item, f)))
        elif os.path.isfile(item):
            paths.append(item)
        else:
            matches = sorted(glob.glob(os.path.expanduser(item)))
            if not matches:
                logger.warning(f"--input '{item}' matches no file.")
            paths += [m for m in matches if os.path.isfile(m)]
    return paths


def draw_outputs(vis: Visualizer, outputs: dict, threshold: float) -> VisImage:
    """Draw what the model returned: ``panoptic_seg``, else ``sem_seg`` (argmax) and/or ``instances``."""
    if "panoptic_seg" in outputs:
        panoptic_seg, segments_info = outputs["panoptic_seg"]
        kept = [s for s in segments_info if s.get("score", 1.0) >= threshold]
        return vis.draw_panoptic_seg(panoptic_seg.to("cpu"), kept)
    if "sem_seg" in outputs:
        vis.draw_sem_seg(outputs["sem_seg"].argmax(dim=0).to("cpu"))
    if "instances" in outputs:
        instances = outputs["instances"].to("cpu")
        vis.draw_instance_predictions(instances[instances.scores >= threshold])
    return vis.output


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    cfg = get_cfg()
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts or [])
    cfg.freeze()
    paths = expand_inputs(args.input)
    if not paths:
        logger.error(f"No input image found in {args.input}.")
        return 1
    predictor = DefaultPredictor(cfg)
    writer = VisImageWriter(args.output)
    done, failed = 0, []
    for path in paths:
        try:
            image = read_image(path, format="BGR")
        except DataError as e:
            logger.error(f"Skipped {path}: {e}")
            failed.append(path)
            continue
        outputs = predictor(image)
        vis = Visualizer(image[:, :, ::-1], predictor.metadata)
        out_path = writer.write(draw_outputs(vis, outputs, args.confidence_threshold), path)
        logger.info(f"{path} -> {out_path}")
        done += 1
    logger.info(f"Wrote {done} overlays to {args.output}" + (f"; skipped {len(failed)}: {failed}" if failed else ""))
    return 0 if done else 1


if __name__ == "__main__":
    setup_logger(name="seg_research")
    sys.exit(main())
