#!/usr/bin/env python
"""Masks from boxes with Segment Anything (projects/SAM; needs ``pip install 'seg_research[sam]'`` and a
SAM checkpoint you download yourself, e.g. sam_vit_b_01ec64.pth).

annotate: box-only COCO annotations -> a new json with SAM masks (the input json is only read)::

    projects/SAM/sam_annotate.py annotate --input-json boxes.json --image-root images/ --output-json masks.json \\
        --model-type vit_b --checkpoint sam_vit_b_01ec64.pth

refine: a Mask R-CNN's masks vs SAM's masks prompted with its boxes, both scored by the COCOEvaluator::

    projects/SAM/sam_annotate.py refine --config-file configs/Shapes/mask_rcnn_R_18_FPN_demo.yaml --dataset shapes_val \\
        --output-dir output/sam_refine MODEL.WEIGHTS output/demo/model_final.pth
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # this project's package (projects/SAM/sam)

import sam  # noqa: E402  (this project's package)
from seg_research.config import get_cfg  # noqa: E402
from seg_research.utils.file_io import atomic_write_json  # noqa: E402
from seg_research.utils.logger import setup_logger  # noqa: E402

logger = logging.getLogger("seg_research.sam_annotate")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model-type", default="vit_b", help=f"one of {sorted(sam.SAM_CHECKPOINT_FILES)}")
    common.add_argument("--checkpoint", default=None,
                        help="the SAM .pth (default: $SEG_RESEARCH_CACHE/sam/<released file name>)")
    common.add_argument("--device", default="cpu")
    common.add_argument("--multimask", action="store_true", help="keep the best of SAM's 3 masks per prompt")
    commands = parser.add_subparsers(dest="command", required=True)
    annotate = commands.add_parser("annotate", parents=[common], help="box-only COCO json -> json with SAM masks")
    annotate.add_argument("--input-json", required=True)
    annotate.add_argument("--image-root", required=True)
    annotate.add_argument("--output-json", required=True, help="a new file; the input json is not modified")
    annotate.add_argument("--replace-existing", action="store_true", help="also replace masks already present")
    refine = commands.add_parser("refine", parents=[common], help="Mask R-CNN masks vs SAM masks from its boxes")
    refine.add_argument("--config-file", required=True)
    refine.add_argument("--dataset", required=True, help="a registered instance dataset (evaluated with COCO AP)")
    refine.add_argument("--output-dir", default=None, help="writes sam_refine_results.json there")
    refine.add_argument("opts", nargs=argparse.REMAINDER, help="config KEY VALUE pairs (MODEL.WEIGHTS ...)")
    return parser


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the command of ``argv``; returns its result (annotate stats, or refine's before/after results)."""
    args = _parser().parse_args(argv)
    setup_logger(name="seg_research")
    predictor = sam.SamInstancePredictor(sam.build_sam(args.model_type, args.checkpoint, args.device),
                                         multimask=args.multimask)
    if args.command == "annotate":
        stats = sam.annotate_coco_json(args.input_json, args.image_root, args.output_json, predictor,
                                       replace_existing=args.replace_existing)
        print(json.dumps(stats))
        return stats
    cfg = get_cfg()
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.MODEL.DEVICE = args.device
    results = sam.evaluate_sam_refinement(cfg, args.dataset, predictor, args.output_dir)
    for tag in ("before", "after"):
        segm = results[tag].get("segm", {})
        print(f"{tag}: mask AP {segm.get('AP', float('nan')):.2f}  AP50 {segm.get('AP50', float('nan')):.2f}")
    if args.output_dir:
        atomic_write_json(os.path.join(args.output_dir, "sam_refine_results.json"), results)
    return results


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ImportError, ValueError) as e:
        sys.exit(f"sam_annotate: {e}")
