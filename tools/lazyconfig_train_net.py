#!/usr/bin/env python
"""Train or evaluate a model from a LazyConfig (``.py`` or saved ``.yaml``), detectron2-style.

    python tools/lazyconfig_train_net.py --config-file configs/Shapes-Lazy/mask_rcnn_R_18_FPN_demo.py
    python tools/lazyconfig_train_net.py --config-file F train.max_iter=100 optimizer.lr=0.001
    python tools/lazyconfig_train_net.py --config-file F --eval-only train.init_checkpoint=out/model_final.pth
    python tools/lazyconfig_train_net.py --config-file F --resume
    python tools/lazyconfig_train_net.py --config-file F --num-gpus 8

The config needs ``model``, ``optimizer`` (its ``params.model`` is set here), ``lr_multiplier`` (an
fvcore ParamScheduler, applied over ``train.max_iter`` iterations), ``dataloader.train``,
``dataloader.test``, ``dataloader.evaluator`` and ``train`` (configs/common/train.py lists its keys).
Overrides are ``key.sub=value`` (see ``LazyConfig.apply_overrides``).

Loading a ``.py`` config executes it: use config files you trust (seg_research.config.lazy).
The OUTPUT_DIR contract is the YAML trainer's (``config.yaml`` — here the LazyConfig as YAML —,
``log.txt``, ``metrics.json``, events, ``model_*.pth``, ``last_checkpoint``, ``inference/``).
"""
from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
from typing import Any, Dict, Optional

import torch
from omegaconf import DictConfig

from seg_research.checkpoint import Checkpointer
from seg_research.config import CfgNode, LazyConfig, instantiate
from seg_research.engine import default_argument_parser, hooks, launch
from seg_research.engine.defaults import check_output_dir_writable, create_ddp_model, default_writers
from seg_research.engine.train_loop import AMPTrainer, SimpleTrainer
from seg_research.evaluation import inference_on_dataset, print_csv_format
from seg_research.solver import LRMultiplier, maybe_add_gradient_clipping
from seg_research.utils import comm
from seg_research.utils.env import seed_all_rng
from seg_research.utils.file_io import atomic_write_json
from seg_research.utils.logger import setup_logger

logger = logging.getLogger("seg_research.lazyconfig_train_net")

EPILOG = """Examples:
  Train:                 tools/lazyconfig_train_net.py --config-file cfg.py --num-gpus 8
  Change config keys:    tools/lazyconfig_train_net.py --config-file cfg.py train.max_iter=100 optimizer.lr=1e-3
  Evaluate a model:      tools/lazyconfig_train_net.py --config-file cfg.py --eval-only train.init_checkpoint=m.pth
  Resume in output_dir:  tools/lazyconfig_train_net.py --config-file cfg.py --resume
"""


def lazy_setup(cfg: DictConfig, args: argparse.Namespace) -> None:
    """``default_setup`` for a LazyConfig: check ``train.output_dir`` is writable, log to its
    ``log.txt``, write the config there as ``config.yaml`` and seed the RNGs (``train.seed``
    plus the rank; < 0 for a random seed)."""
    output_dir = cfg.train.output_dir
    rank = comm.get_rank()
    if comm.is_main_process():
        check_output_dir_writable(output_dir)
    comm.synchronize()
    setup_logger(output_dir, distributed_rank=rank)
    setup_logger(output_dir, distributed_rank=rank, name="fvcore")
    logger.info(f"Rank {rank} of {comm.get_world_size()}; Python {sys.version.split()[0]}, torch "
                f"{torch.__version__}, CUDA available: {torch.cuda.is_available()}")
    logger.info(f"Command line arguments: {args}")
    if comm.is_main_process():
        path = os.path.join(output_dir, "config.yaml")
        LazyConfig.save(cfg, path)
        logger.info(f"Full config saved to {path}")
    seed = cfg.train.get("seed", -1)
    seed_all_rng(None if seed < 0 else seed + rank)


def do_test(cfg: DictConfig, model: torch.nn.Module) -> Dict[str, Any]:
    """Evaluate ``model`` on ``dataloader.test`` with ``dataloader.evaluator``; the results are
    also written to ``<train.output_dir>/inference/results.json``. Returns ``{}`` without an evaluator."""
    if "evaluator" not in cfg.dataloader:
        return {}
    results = inference_on_dataset(model, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator))
    if comm.is_main_process():
        print_csv_format(results)
        atomic_write_json(os.path.join(cfg.train.output_dir, "inference", "results.json"), results, indent=2)
    return results


def build_optimizer(cfg: DictConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """``cfg.optimizer`` over ``model``'s parameters, clipping gradients as ``train.clip_gradients``
    asks (the keys of the YAML SOLVER.CLIP_GRADIENTS, lower-case)."""
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    clip = cfg.train.get("clip_gradients")
    if clip is not None and clip.enabled:
        solver = CfgNode({"SOLVER": {"CLIP_GRADIENTS": {"ENABLED": True, "CLIP_TYPE": clip.clip_type,
                                                        "CLIP_VALUE": clip.clip_value, "NORM_TYPE": clip.norm_type}}})
        optimizer.__class__ = maybe_add_gradient_clipping(solver, type(optimizer))  # adds clipping to its step
    return optimizer


def build_model(cfg: DictConfig) -> torch.nn.Module:
    model = instantiate(cfg.model)
    model.to(torch.device(cfg.train.device))
    logger.info(f"Model ({sum(p.numel() for p in model.parameters())} parameters):\n{model}")
    return model


def do_train(args: argparse.Namespace, cfg: DictConfig) -> Dict[str, Any]:
    """Train ``cfg.model`` for ``train.max_iter`` iterations (from the last checkpoint of
    ``train.output_dir`` with ``--resume``, else from ``train.init_checkpoint``); returns the
    last evaluation results."""
    model = build_model(cfg)
    optimizer = build_optimizer(cfg, model)
    model = create_ddp_model(model, **cfg.train.get("ddp", {}))
    trainer_class = AMPTrainer if cfg.train.amp.enabled else SimpleTrainer
    trainer = trainer_class(model, None, optimizer)
    scheduler = LRMultiplier(optimizer, multiplier=instantiate(cfg.lr_multiplier), max_iter=cfg.train.max_iter)
    # the YAML trainer's checkpoint layout (model, optimizer, scheduler, iteration); the scheduler
    # loads after the optimizer, so a resumed run with a new train.max_iter follows the new schedule
    checkpointer = Checkpointer(comm.unwrap_model(model),
                                cfg.train.output_dir, optimizer=optimizer, scheduler=scheduler)
    last_results: Dict[str, Any] = {}

    def test_and_keep() -> Dict[str, Any]:
        last_results.clear()
        last_results.update(do_test(cfg, model))
        return last_results

    trainer.register_hooks([
        hooks.IterationTimer(),
        hooks.LRScheduler(optimizer=optimizer, scheduler=scheduler),
        hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer) if comm.is_main_process() else None,
        hooks.EvalHook(cfg.train.eval_period, test_and_keep),
        hooks.PeriodicWriter(default_writers(cfg.train.output_dir, cfg.train.max_iter), period=cfg.train.log_period)
        if comm.is_main_process() else None,
    ])
    checkpoint = checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=args.resume)
    start_iter = checkpoint.get("iteration", -1) + 1 if args.resume and checkpointer.has_checkpoint() else 0
    if start_iter:
        logger.info(f"Resuming at iteration {start_iter} (train.init_checkpoint is ignored when resuming).")
        cfg.dataloader.train.start_iter = start_iter  # the loader continues the stream where it stopped
    trainer.data_loader = instantiate(cfg.dataloader.train)
    trainer.train(start_iter, cfg.train.max_iter)
    return last_results


def main(args: argparse.Namespace) -> Optional[Dict[str, Any]]:
    cfg = LazyConfig.load(args.config_file)
    cfg = LazyConfig.apply_overrides(cfg, args.opts or [])
    lazy_setup(cfg, args)
    if args.eval_only:
        model = build_model(cfg)
        Checkpointer(model, cfg.train.output_dir).resume_or_load(cfg.train.init_checkpoint, resume=args.resume)
        return do_test(cfg, model)
    return do_train(args, cfg)


def invoke_main() -> None:
    args = default_argument_parser(epilog=EPILOG).parse_args()
    launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,), timeout=datetime.timedelta(minutes=args.dist_timeout))


if __name__ == "__main__":
    invoke_main()
