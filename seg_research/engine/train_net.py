"""The body of ``tools/train_net.py``, reusable by projects: config set-up, train or evaluate, launch.

A project's ``train_net.py`` is then a few lines::

    import myproject  # registers the project's modules
    from seg_research.engine import default_argument_parser, launch_train_net

    if __name__ == "__main__":
        launch_train_net(default_argument_parser().parse_args(),
                         add_config_fns=[myproject.add_myproject_config])
"""
from __future__ import annotations

import argparse
import datetime
import functools
import logging
from typing import Any, Callable, Dict, Optional, Sequence, Type

import seg_research.data.datasets.builtin  # noqa: F401  (registers the builtin datasets in every process)

from ..config import CfgNode, get_cfg
from ..utils import comm
from . import hooks
from .defaults import DefaultTrainer, default_setup
from .launch import launch

__all__ = ["setup_cfg", "train_net_main", "launch_train_net"]

AddConfigFn = Callable[[CfgNode], None]


def setup_cfg(args: argparse.Namespace, add_config_fns: Sequence[AddConfigFn] = ()) -> CfgNode:
    """The frozen config of a run: defaults, then each ``add_config_fns(cfg)`` (a project's
    ``add_<name>_config``, adding its keys), ``args.config_file`` and the ``KEY VALUE`` pairs of
    ``args.opts``; then :func:`default_setup` (logging, ``config.yaml`` in OUTPUT_DIR, seeds)."""
    cfg = get_cfg()
    for add_config in add_config_fns:
        add_config(cfg)
    if args.config_file:
        cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts or [])
    cfg.freeze()
    default_setup(cfg, args)
    return cfg


def train_net_main(
    args: argparse.Namespace,
    add_config_fns: Sequence[AddConfigFn] = (),
    trainer_class: Type[DefaultTrainer] = DefaultTrainer,
) -> Optional[Dict[str, Any]]:
    """One process of ``train_net.py``: evaluate ``MODEL.WEIGHTS`` (``--eval-only``) or train
    (``--resume`` continues from OUTPUT_DIR's last checkpoint). Returns the evaluation results."""
    cfg = setup_cfg(args, add_config_fns)
    if args.eval_only:
        model = trainer_class.build_model(cfg)
        trainer_class.load_eval_weights(cfg, model, resume=args.resume)
        results = trainer_class.test(cfg, model)
        if cfg.TEST.AUG.ENABLED:
            results.update(trainer_class.test_with_TTA(cfg, model))
        return results
    trainer = trainer_class(cfg)
    trainer.resume_or_load(resume=args.resume)
    if cfg.TEST.AUG.ENABLED:  # TTA once, after training (detectron2's tools/train_net.py does the same)
        trainer.register_hooks([hooks.EvalHook(0, lambda: trainer.test_with_TTA(cfg, trainer.model))])
    results = trainer.train()
    if comm.is_main_process() and results:
        logging.getLogger("seg_research").info(f"Final evaluation: {results}")
    return results


def launch_train_net(
    args: argparse.Namespace,
    add_config_fns: Sequence[AddConfigFn] = (),
    trainer_class: Type[DefaultTrainer] = DefaultTrainer,
) -> None:
    """Run :func:`train_net_main` on every process the flags of :func:`default_argument_parser`
    ask for (``--num-gpus``, ``--num-machines``, ``--machine-rank``, ``--dist-url``,
    ``--dist-timeout``; torchrun/SLURM environments are detected by :func:`launch`).
    ``add_config_fns`` and ``trainer_class`` must be module-level (spawned processes unpickle them),
    and the script must import the modules they register at module level."""
    launch(
        functools.partial(train_net_main, add_config_fns=tuple(add_config_fns), trainer_class=trainer_class),
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
        timeout=datetime.timedelta(minutes=args.dist_timeout),
    )
