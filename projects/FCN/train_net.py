#!/usr/bin/env python
"""Train or evaluate an FCN: ``tools/train_net.py`` with the FCN project loaded.

    python projects/FCN/train_net.py --config-file projects/FCN/configs/Shapes/fcn8s_R_18_demo.yaml
    python projects/FCN/train_net.py --config-file F --eval-only MODEL.WEIGHTS out/model_final.pth
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # this project's package

import fcn  # noqa: E402  (registers FCNHead in every process)
from seg_research.engine import default_argument_parser, launch_train_net  # noqa: E402

if __name__ == "__main__":
    launch_train_net(default_argument_parser().parse_args(), add_config_fns=[fcn.add_fcn_config])
