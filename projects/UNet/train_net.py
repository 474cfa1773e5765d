#!/usr/bin/env python
"""Train or evaluate a U-Net: ``tools/train_net.py`` with the U-Net project loaded.

    python projects/UNet/train_net.py --config-file projects/UNet/configs/Shapes/unet_demo.yaml
    python projects/UNet/train_net.py --config-file F --eval-only MODEL.WEIGHTS out/model_final.pth
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # this project's package

import unet  # noqa: E402  (registers UNetEncoder and UNetHead in every process)
from seg_research.engine import default_argument_parser, launch_train_net  # noqa: E402

if __name__ == "__main__":
    launch_train_net(default_argument_parser().parse_args(), add_config_fns=[unet.add_unet_config])
