#!/usr/bin/env python
"""Train or evaluate a DeepLabV3+ model: ``tools/train_net.py`` with the DeepLabV3Plus project loaded.

    python projects/DeepLabV3Plus/train_net.py --config-file projects/DeepLabV3Plus/configs/Shapes/deeplab_v3plus_R_18_demo.yaml
    python projects/DeepLabV3Plus/train_net.py --config-file F --eval-only MODEL.WEIGHTS out/model_final.pth
"""
import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # this project's package

import deeplab  # noqa: E402  (registers DeepLabV3PlusHead in every process)
import seg_research.data.datasets.builtin  # noqa: E402,F401  (registers the builtin datasets)
from seg_research.checkpoint import Checkpointer  # noqa: E402
from seg_research.config import get_cfg  # noqa: E402
from seg_research.engine import DefaultTrainer, default_argument_parser, default_setup, launch  # noqa: E402


def setup(args):
    cfg = get_cfg()
    deeplab.add_deeplab_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts or [])
    cfg.freeze()
    default_setup(cfg, args)
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = DefaultTrainer.build_model(cfg)
        Checkpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        return DefaultTrainer.test(cfg, model)
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,), timeout=datetime.timedelta(minutes=args.dist_timeout))
