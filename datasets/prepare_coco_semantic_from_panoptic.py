#!/usr/bin/env python
"""Make the semantic label PNGs of Mask2Former's ``coco_2017_{train,val}_panoptic_with_sem_seg`` from COCO's panoptic
annotations: ``$SEG_DATASETS/coco/panoptic_{split}2017/*.png`` -> ``panoptic_semseg_{split}2017/*.png``, uint8 labels of
the 133 classes (things first, each group by id, as the panoptic json's categories sorted), 255 void::

    python datasets/prepare_coco_semantic_from_panoptic.py [--coco-dir DIR] [--splits train val] [--workers 2]

Same labels as Mask2Former's ``datasets/prepare_coco_semantic_annos_from_panoptic_annos.py``, without panopticapi
(see :func:`seg_research.data.datasets.panoptic_sem_seg.write_semantic_from_panoptic`).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from seg_research.data.datasets.builtin import get_datasets_root
from seg_research.data.datasets.coco import read_json
from seg_research.data.datasets.coco_panoptic import panoptic_metadata
from seg_research.data.datasets.panoptic_sem_seg import write_semantic_from_panoptic


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--coco-dir", default=None, help="COCO root (default: $SEG_DATASETS/coco)")
    parser.add_argument("--splits", nargs="+", default=["train", "val"], choices=["train", "val"])
    parser.add_argument("--workers", type=int, default=2, help="worker processes (0: none); default 2")
    args = parser.parse_args(argv)
    coco = args.coco_dir or os.path.join(get_datasets_root(), "coco")
    for split in args.splits:
        panoptic_json = os.path.join(coco, "annotations", f"panoptic_{split}2017.json")
        labels = panoptic_metadata(read_json(panoptic_json)["categories"])["stuff_dataset_id_to_contiguous_id"]
        output = os.path.join(coco, f"panoptic_semseg_{split}2017")
        count = write_semantic_from_panoptic(panoptic_json, os.path.join(coco, f"panoptic_{split}2017"), output,
                                             labels, workers=args.workers)
        print(f"Wrote {count} semantic label PNGs to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
