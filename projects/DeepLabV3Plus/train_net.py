#!/usr/bin/env python
"""Train or evaluate a DeepLabV3+ model: ``tools/train_net.py`` with the DeepLabV3Plus project loaded.

    python projects/DeepLabV3Plus/train_net.py --config-file projects/DeepLabV3Plus/configs/Shapes/deeplab_v3plus_R_18_demo.yaml
    python projects/DeepLabV3Plus/train_net.py --config-file F --eval-only MODEL.WEIGHTS out/model_final.pth
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # this project's package

import deeplab  # noqa: E402  (registers DeepLabV3PlusHead in every process)
from seg_research.engine import default_argument_parser, launch_train_net  # noqa: E402

if __name__ == "__main__":
    launch_train_net(default_argument_parser().parse_args(), add_config_fns=[deeplab.add_deeplab_config])
