#!/usr/bin/env python
"""Train or evaluate a U-Net: ``tools/train_net.py`` with the U-Net project loaded.

    python projects/UNet/train_net.py --config-file projects/UNet/configs/Shapes/unet_demo.yaml
    python projects/UNet/train_net.py --config-file F --eval-only MODEL.WEIGHTS out/model_final.pth
"""
import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # this project's package

import unet  # noqa: E402  (registers UNetEncoder and UNetHead in every process)
import seg_research.data.datasets.builtin  # noqa: E402,F401  (registers the builtin datasets)
from seg_research.checkpoint import Checkpointer  # noqa: E402
from seg_research.config import get_cfg  # noqa: E402
from seg_research.engine import DefaultTrainer, default_argument_parser, default_setup, launch  # noqa: E402


def setup(args):
    cfg = get_cfg()
    unet.add_unet_config(cfg)
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
