#!/usr/bin/env python
"""Make ADE20K's panoptic and instance ground truth (``ade20k_panoptic_*``, ``ade20k_instance_*``) from the two
downloads: ``ADEChallengeData2016.zip`` and ``annotations_instance.tar`` unpacked inside it::

    python datasets/prepare_ade20k_panoptic.py [--ade-dir $SEG_DATASETS/ADEChallengeData2016] [--splits train val]

Writes ``ade20k_panoptic_{split}.json``, ``ade20k_panoptic_{split}/*.png`` and ``ade20k_instance_{split}.json``
into the ADE20K folder (see datasets/README.md and :func:`seg_research.data.datasets.ade20k_panoptic.
prepare_ade20k_panoptic`).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from seg_research.data.datasets.ade20k_panoptic import prepare_ade20k_panoptic
from seg_research.data.datasets.builtin import get_datasets_root


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ade-dir", default=None,
                        help="the ADEChallengeData2016 folder (default: $SEG_DATASETS/ADEChallengeData2016)")
    parser.add_argument("--splits", nargs="+", default=["train", "val"], choices=["train", "val"])
    args = parser.parse_args(argv)
    ade = args.ade_dir or os.path.join(get_datasets_root(), "ADEChallengeData2016")
    for split in args.splits:
        count = prepare_ade20k_panoptic(ade, split)
        print(f"{split}: converted {count} images into {ade}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
