#!/usr/bin/env python
"""Train or evaluate a model from a config, detectron2-style.

    python tools/train_net.py --config-file configs/Shapes/mask_rcnn_R_18_FPN_demo.yaml
    python tools/train_net.py --config-file F --eval-only MODEL.WEIGHTS out/model_final.pth
    python tools/train_net.py --config-file F --resume
    python tools/train_net.py --config-file F --num-gpus 8

The set-up, training/evaluation and launch live in ``seg_research.engine.train_net`` so that
projects reuse them; subclass ``DefaultTrainer`` and pass ``trainer_class=`` to change a part.
"""
from seg_research.engine import default_argument_parser, launch_train_net

if __name__ == "__main__":
    launch_train_net(default_argument_parser().parse_args())
