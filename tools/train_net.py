#!/usr/bin/env python
"""Train or evaluate a model from a config, detectron2-style.

    python tools/train_net.py --config-file configs/Shapes/demo.yaml
    python tools/train_net.py --config-file F --eval-only MODEL.WEIGHTS out/model_final.pth
    python tools/train_net.py --config-file F --resume
"""
import datetime
import logging

import seg_research.data.datasets.builtin  # noqa: F401  (registers builtin datasets in every process)
from seg_research.checkpoint import Checkpointer
from seg_research.config import get_cfg
from seg_research.engine import DefaultTrainer, default_argument_parser, default_setup, launch
from seg_research.utils import comm


def setup(args):
    cfg = get_cfg()
    if args.config_file:
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
    results = trainer.train()
    if comm.is_main_process() and results:
        logging.getLogger("seg_research").info(f"Final evaluation: {results}")
    return results


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
        timeout=datetime.timedelta(minutes=args.dist_timeout),
    )
