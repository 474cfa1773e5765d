"""The standard training set-up: argument parser, ``default_setup`` and ``DefaultTrainer``."""
from __future__ import annotations

import argparse
import inspect
import logging
import os
import sys
import tempfile
from collections import OrderedDict
from typing import Any, Dict, List, Optional

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..checkpoint import Checkpointer
from ..config import CfgNode
from ..data.build import build_detection_test_loader, build_detection_train_loader, micro_batch_size
from ..evaluation import DatasetEvaluator, build_evaluator, inference_on_dataset, print_csv_format
from ..modeling import build_model, build_tta_model
from ..solver import build_lr_scheduler, build_optimizer
from ..utils import comm
from ..utils.env import keep_freed_memory, seed_all_rng
from ..utils.events import CommonMetricPrinter, JSONWriter, TensorboardXWriter
from ..utils.file_io import atomic_open, atomic_write_json
from ..utils.logger import setup_logger
from . import hooks
from .amp import AutocastInference, autocast_dtype
from .model_ema import ModelEMA
from .predictor import DefaultPredictor
from .train_loop import AMPTrainer, SimpleTrainer, TrainerBase

__all__ = ["default_argument_parser", "default_setup", "default_writers", "DefaultTrainer", "DefaultPredictor",
           "create_ddp_model"]

logger = logging.getLogger(__name__)


def default_argument_parser(epilog: Optional[str] = None) -> argparse.ArgumentParser:
    """detectron2's command line: ``--config-file F [--resume] [--eval-only] [--num-gpus N]
    [--num-machines M --machine-rank R --dist-url URL] KEY VALUE ...``."""
    parser = argparse.ArgumentParser(
        epilog=epilog or (
            "Examples:\n"
            "  Train on one machine:  tools/train_net.py --config-file cfg.yaml --num-gpus 8\n"
            "  Change config keys:    tools/train_net.py --config-file cfg.yaml SOLVER.BASE_LR 0.001\n"
            "  Evaluate a model:      tools/train_net.py --config-file cfg.yaml --eval-only MODEL.WEIGHTS model.pth\n"
            "  Resume in OUTPUT_DIR:  tools/train_net.py --config-file cfg.yaml --resume\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to the YAML config file")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from OUTPUT_DIR/last_checkpoint (model, optimizer, LR scheduler, iteration, data "
        "stream); without it, MODEL.WEIGHTS is loaded as initial weights and training starts at iteration 0",
    )
    parser.add_argument("--eval-only", action="store_true", help="only evaluate MODEL.WEIGHTS (or the last checkpoint with --resume)")
    parser.add_argument("--num-gpus", type=int, default=1, help="processes per machine (gloo processes on a CPU machine)")
    parser.add_argument("--num-machines", type=int, default=1, help="total number of machines")
    parser.add_argument("--machine-rank", type=int, default=0, help="rank of this machine (0 .. num-machines-1)")
    parser.add_argument(
        "--dist-url",
        default="auto",
        help="initialisation URL of the process group, tcp://<machine0 host>:<port>; 'auto' picks a free local port",
    )
    parser.add_argument(
        "--dist-timeout",
        type=float,
        default=30.0,
        metavar="MINUTES",
        help="how long a collective waits for the other processes before the job fails",
    )
    parser.add_argument(
        "opts",
        default=None,
        nargs=argparse.REMAINDER,
        help="config overrides as KEY VALUE pairs, e.g. SOLVER.MAX_ITER 100 MODEL.WEIGHTS out/model_final.pth",
    )
    return parser


def check_output_dir_writable(output_dir: str) -> None:
    try:
        os.makedirs(output_dir, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output_dir, prefix=".write_test"):
            pass
    except OSError as e:
        raise OSError(
            e.errno, f"OUTPUT_DIR '{output_dir}' is not writable ({e.strerror}). Pass OUTPUT_DIR <a writable folder>."
        ) from e


def default_setup(cfg: CfgNode, args: Optional[argparse.Namespace] = None) -> None:
    """Check OUTPUT_DIR is writable, set up logging (``log.txt``), log the environment and
    config, write ``config.yaml`` (the merged config) and seed RNGs (rank-dependent)."""
    output_dir = cfg.OUTPUT_DIR
    rank = comm.get_rank()
    if comm.is_main_process():
        check_output_dir_writable(output_dir)
    comm.synchronize()
    log = setup_logger(output_dir, distributed_rank=rank)
    setup_logger(output_dir, distributed_rank=rank, name="fvcore")
    log.info(f"Rank of current process: {rank}. World size: {comm.get_world_size()}")
    log.info(f"Python {sys.version.split()[0]}, torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
    if args is not None:
        log.info(f"Command line arguments: {args}")
        if getattr(args, "config_file", ""):
            log.info(f"Contents of config file {args.config_file}:\n{open(args.config_file, encoding='utf-8').read()}")
    if comm.is_main_process():
        path = os.path.join(output_dir, "config.yaml")
        with atomic_open(path, "w", encoding="utf-8") as f:
            f.write(cfg.dump())
        log.info(f"Full config saved to {path}")
    if cfg.MODEL.DEVICE == "cpu" and keep_freed_memory():
        log.info("CPU run: glibc malloc keeps freed memory for reuse (SEG_KEEP_FREED_MEMORY=0 to opt out).")
    seed = cfg.SEED if cfg.SEED < 0 else cfg.SEED + rank
    seed_all_rng(None if seed < 0 else seed)
    if cfg.CUDNN_BENCHMARK:
        torch.backends.cudnn.benchmark = True


def default_writers(output_dir: str, max_iter: int) -> list:
    """Console line, ``metrics.json`` (JSON lines) and TensorBoard events in ``output_dir``."""
    return [
        CommonMetricPrinter(max_iter),
        JSONWriter(os.path.join(output_dir, "metrics.json")),
        TensorboardXWriter(output_dir),
    ]


class _DataStreamState:
    """The training data stream's seed, checkpointed so ``--resume`` continues the exact stream."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def state_dict(self) -> Dict[str, int]:
        return {"seed": self.seed}

    def load_state_dict(self, state: Dict[str, int]) -> None:
        self.seed = int(state["seed"])


class DefaultTrainer(TrainerBase):
    """A trainer with the standard behaviour: model, optimizer, LR scheduler, data loader,
    checkpointer, evaluator and writers built from the config. Override the ``build_*``
    classmethods to change a part::

        trainer = DefaultTrainer(cfg)
        trainer.resume_or_load(resume=args.resume)
        trainer.train()
    """

    def __init__(self, cfg: CfgNode) -> None:
        super().__init__()
        if not logging.getLogger("seg_research").handlers:  # default_setup was not called
            setup_logger()
        cfg = self.auto_scale_workers(cfg, comm.get_world_size())
        # an IMS_PER_BATCH that does not split into micro-batches fails here, before the model is built
        micro_batch_size(cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.GRADIENT_ACCUMULATION_STEPS, comm.get_world_size())
        self.cfg = cfg
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        model = create_ddp_model(model, broadcast_buffers=False,
                                 find_unused_parameters=cfg.MODEL.DDP.FIND_UNUSED_PARAMETERS)
        self._trainer = self._build_step_trainer(cfg, model, optimizer)
        self._trainer.after_backward = self.after_backward  # run this trainer's hooks
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.data_stream = _DataStreamState(cfg.SEED if cfg.SEED >= 0 else comm.shared_random_seed())
        grad_scaler = getattr(self._trainer, "grad_scaler", None)
        # MODEL_EMA: the average of the unwrapped module's weights, in every checkpoint as "ema_state"
        self.model_ema = ModelEMA(cfg.MODEL_EMA.DECAY, cfg.MODEL_EMA.DEVICE) if cfg.MODEL_EMA.ENABLED else None
        self.checkpointer = Checkpointer(
            comm.unwrap_model(model),
            cfg.OUTPUT_DIR,
            optimizer=optimizer,
            scheduler=self.scheduler,
            data_stream=self.data_stream,
            **({"grad_scaler": grad_scaler} if grad_scaler is not None else {}),
            **({"ema_state": self.model_ema} if self.model_ema is not None else {}),
        )
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.register_hooks(self.build_hooks())

    @staticmethod
    def _build_step_trainer(cfg: CfgNode, model: nn.Module, optimizer: torch.optim.Optimizer) -> SimpleTrainer:
        """``AMPTrainer`` when SOLVER.AMP.ENABLED resolves to a reduced precision on MODEL.DEVICE
        (:func:`~seg_research.engine.amp.autocast_dtype`), else ``SimpleTrainer``."""
        skip = cfg.SOLVER.SKIP_NONFINITE_STEPS
        accumulation = cfg.SOLVER.GRADIENT_ACCUMULATION_STEPS
        if accumulation > 1:
            logger.info(f"SOLVER.GRADIENT_ACCUMULATION_STEPS: {accumulation} micro-batches of "
                        f"{cfg.SOLVER.IMS_PER_BATCH // accumulation} images per optimizer step.")
        dtype = autocast_dtype(cfg.MODEL.DEVICE, cfg.SOLVER.AMP.PRECISION, "SOLVER.AMP.PRECISION") \
            if cfg.SOLVER.AMP.ENABLED else None
        if dtype is None:
            return SimpleTrainer(model, None, optimizer, skip_nonfinite_steps=skip,
                                 gradient_accumulation_steps=accumulation)
        logger.info(f"SOLVER.AMP: training under torch.autocast({cfg.MODEL.DEVICE!r}, dtype={dtype}).")
        return AMPTrainer(model, None, optimizer, precision=dtype, skip_nonfinite_steps=skip,
                          device_type=torch.device(cfg.MODEL.DEVICE).type, gradient_accumulation_steps=accumulation)

    @property
    def model(self) -> nn.Module:
        return self._trainer.model

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self._trainer.optimizer

    def resume_or_load(self, resume: bool = True) -> None:
        """With ``resume`` and a checkpoint in OUTPUT_DIR: restore everything and continue at
        the next iteration (MODEL.WEIGHTS is then ignored). Otherwise load MODEL.WEIGHTS
        (model only) if set, and start at iteration 0."""
        checkpoint = self.checkpointer.resume_or_load(self.cfg.MODEL.WEIGHTS, resume=resume)
        if resume and self.checkpointer.has_checkpoint():
            self.start_iter = checkpoint.get("iteration", -1) + 1
            logger.info(f"Resuming at iteration {self.start_iter} (MODEL.WEIGHTS is ignored when resuming).")
        elif resume:
            logger.info(f"--resume: no checkpoint in '{self.cfg.OUTPUT_DIR}'; starting at iteration 0 "
                        f"from MODEL.WEIGHTS='{self.cfg.MODEL.WEIGHTS}'.")

    def build_hooks(self) -> List[hooks.HookBase]:
        """Timer, LR scheduler, EMA (MODEL_EMA), PreciseBN, periodic checkpointer, evaluation,
        writers, in that order. With SOLVER.BEST_CHECKPOINTER the evaluation and the
        ``BestCheckpointer`` come before the periodic checkpointer, so that a checkpoint written at
        an evaluation iteration carries the best-metric state after it (exact ``--resume``)."""
        cfg = self.cfg
        ret: List[hooks.HookBase] = [
            hooks.IterationTimer(),
            hooks.LRScheduler(),
        ]
        if self.model_ema is not None:
            ret.append(hooks.EMAHook(self.model, self.model_ema))
        if cfg.TEST.PRECISE_BN.ENABLED:
            # Before checkpointing and evaluation, so that both see the recomputed statistics;
            # its own loader, so that the training stream's position (and --resume) is unaffected.
            ret.append(hooks.PreciseBN(cfg.TEST.EVAL_PERIOD, self.model,
                                       self._build_train_loader_at(0, self.data_stream.seed + 1),
                                       cfg.TEST.PRECISE_BN.NUM_ITER))
        periodic = [hooks.PeriodicCheckpointer(self.checkpointer, cfg.SOLVER.CHECKPOINT_PERIOD)] \
            if comm.is_main_process() else []

        def test_and_save_results() -> Dict[str, Any]:
            if self.model_ema is not None:  # evaluate the average; training continues on the raw weights
                logger.info("Evaluating the model's EMA weights (MODEL_EMA.ENABLED).")
                with self.model_ema.apply_to(self.model):
                    self._last_eval_results = self.test(self.cfg, self.model)
            else:
                self._last_eval_results = self.test(self.cfg, self.model)
            return self._last_eval_results

        evaluation: List[hooks.HookBase] = []
        if cfg.DATASETS.TEST:
            evaluation.append(hooks.EvalHook(cfg.TEST.EVAL_PERIOD, test_and_save_results))
        best = cfg.SOLVER.BEST_CHECKPOINTER
        if best.ENABLED:
            if not cfg.DATASETS.TEST:
                raise ValueError("SOLVER.BEST_CHECKPOINTER.ENABLED needs an evaluation: DATASETS.TEST is empty.")
            best_hook = hooks.BestCheckpointer(cfg.TEST.EVAL_PERIOD, self.checkpointer, best.METRIC, mode=best.MODE,
                                               patience=best.PATIENCE)
            self.checkpointer.add_checkpointable("best_checkpointer", best_hook)
            evaluation.append(best_hook)
            ret.extend(evaluation + periodic)
        else:
            ret.extend(periodic + evaluation)
        if comm.is_main_process():
            ret.append(hooks.PeriodicWriter(self.build_writers(), period=cfg.LOG_PERIOD))
        return ret

    def build_writers(self) -> list:
        return default_writers(self.cfg.OUTPUT_DIR, self.max_iter)

    def train(self) -> Optional[Dict[str, Any]]:
        """Train from ``start_iter`` to ``SOLVER.MAX_ITER``; returns the last evaluation results."""
        self._trainer.data_loader = self._build_train_loader_at(self.start_iter, self.data_stream.seed)
        super().train(self.start_iter, self.max_iter)
        return getattr(self, "_last_eval_results", None)

    def _build_train_loader_at(self, start_iter: int, seed: int):
        """``build_train_loader(cfg, start_iter, seed)``; an override with detectron2's signature
        ``build_train_loader(cls, cfg)`` (the Trainer of upstream projects' train_net.py) gets the config
        alone: its stream starts at its first batch (cfg.SEED's), also when resuming."""
        if len(inspect.signature(self.build_train_loader).parameters) >= 3:
            return self.build_train_loader(self.cfg, start_iter, seed)
        if start_iter:
            logger.warning(f"{type(self).__name__}.build_train_loader(cfg) takes no start_iter: resuming at "
                           f"iteration {start_iter} with the data stream from its beginning.")
        return self.build_train_loader(self.cfg)

    def run_step(self) -> None:
        self._trainer.iter = self.iter
        self._trainer.run_step()

    @staticmethod
    def auto_scale_workers(cfg: CfgNode, num_workers: int) -> CfgNode:
        """The config for ``num_workers`` processes when its solver was written for
        ``SOLVER.REFERENCE_WORLD_SIZE`` of them (0: returned unchanged): detectron2's linear
        scaling rule. With ``scale = num_workers / REFERENCE_WORLD_SIZE``, IMS_PER_BATCH and
        BASE_LR are multiplied by it; MAX_ITER, WARMUP_ITERS, STEPS, TEST.EVAL_PERIOD and
        SOLVER.CHECKPOINT_PERIOD divided by it (rounded), so that each image is seen as often and
        each schedule point falls at the same epoch. Returns a new config; REFERENCE_WORLD_SIZE
        becomes ``num_workers``, so scaling twice changes nothing."""
        reference = cfg.SOLVER.REFERENCE_WORLD_SIZE
        if reference == 0 or reference == num_workers:
            return cfg
        if cfg.SOLVER.IMS_PER_BATCH % reference != 0:
            raise ValueError(f"SOLVER.IMS_PER_BATCH {cfg.SOLVER.IMS_PER_BATCH} is not divisible by "
                             f"SOLVER.REFERENCE_WORLD_SIZE {reference}: the per-process batch must be whole.")
        scale = num_workers / reference
        cfg = cfg.clone()
        frozen = cfg.is_frozen()
        cfg.defrost()
        solver = cfg.SOLVER
        solver.IMS_PER_BATCH = int(round(solver.IMS_PER_BATCH * scale))
        solver.BASE_LR = solver.BASE_LR * scale
        solver.MAX_ITER = int(round(solver.MAX_ITER / scale))
        solver.WARMUP_ITERS = int(round(solver.WARMUP_ITERS / scale))
        solver.STEPS = tuple(int(round(step / scale)) for step in solver.STEPS)
        solver.CHECKPOINT_PERIOD = int(round(solver.CHECKPOINT_PERIOD / scale))
        cfg.TEST.EVAL_PERIOD = int(round(cfg.TEST.EVAL_PERIOD / scale))
        solver.REFERENCE_WORLD_SIZE = num_workers
        logger.info(f"SOLVER.REFERENCE_WORLD_SIZE {reference} -> {num_workers} processes: IMS_PER_BATCH "
                    f"{solver.IMS_PER_BATCH}, BASE_LR {solver.BASE_LR}, MAX_ITER {solver.MAX_ITER}, WARMUP_ITERS "
                    f"{solver.WARMUP_ITERS}, STEPS {solver.STEPS}.")
        if frozen:
            cfg.freeze()
        return cfg

    @classmethod
    def load_eval_weights(cls, cfg: CfgNode, model: nn.Module, resume: bool = False) -> None:
        """``--eval-only``: load MODEL.WEIGHTS (with ``resume``, OUTPUT_DIR's last checkpoint when there is
        one) into ``model``. With MODEL_EMA.ENABLED and MODEL_EMA.USE_EMA_WEIGHTS_FOR_EVAL_ONLY, the model
        gets the file's EMA weights (its ``ema_state``) instead of its raw ones."""
        checkpointer = Checkpointer(model, save_dir=cfg.OUTPUT_DIR)
        if not (cfg.MODEL_EMA.ENABLED and cfg.MODEL_EMA.USE_EMA_WEIGHTS_FOR_EVAL_ONLY):
            checkpointer.resume_or_load(cfg.MODEL.WEIGHTS, resume=resume)
            return
        path = checkpointer.get_checkpoint_file() if resume and checkpointer.has_checkpoint() else cfg.MODEL.WEIGHTS
        ema = ModelEMA(cfg.MODEL_EMA.DECAY)
        checkpointer.add_checkpointable("ema_state", ema)
        checkpointer.load(path, checkpointables=["ema_state"])
        if not ema.initialized:
            raise ValueError(f"MODEL_EMA.USE_EMA_WEIGHTS_FOR_EVAL_ONLY: checkpoint '{path}' holds no EMA weights (no "
                             "'ema_state' entry; it was not trained with MODEL_EMA.ENABLED True). Set "
                             "MODEL_EMA.USE_EMA_WEIGHTS_FOR_EVAL_ONLY False to evaluate its raw weights.")
        model.load_state_dict(ema.state_dict())
        logger.info(f"Evaluating the EMA weights of '{path}' (MODEL_EMA.USE_EMA_WEIGHTS_FOR_EVAL_ONLY).")

    @classmethod
    def build_model(cls, cfg: CfgNode) -> nn.Module:
        model = build_model(cfg)
        logger.info(f"Model:\n{model}")
        return model

    @classmethod
    def build_optimizer(cls, cfg: CfgNode, model: nn.Module) -> torch.optim.Optimizer:
        return build_optimizer(cfg, model)

    @classmethod
    def build_lr_scheduler(cls, cfg: CfgNode, optimizer: torch.optim.Optimizer):
        return build_lr_scheduler(cfg, optimizer)

    @classmethod
    def build_train_loader(cls, cfg: CfgNode, start_iter: int = 0, seed: Optional[int] = None):
        """Infinite loader starting at batch ``start_iter`` of the stream seeded by ``seed``."""
        return build_detection_train_loader(cfg, start_iter=start_iter, seed=seed)

    @classmethod
    def build_test_loader(cls, cfg: CfgNode, dataset_name: str):
        return build_detection_test_loader(cfg, dataset_name)

    @classmethod
    def build_evaluator(cls, cfg: CfgNode, dataset_name: str, output_folder: Optional[str] = None) -> DatasetEvaluator:
        """The evaluator of ``dataset_name``, writing into ``output_folder`` (default
        ``OUTPUT_DIR/inference/<dataset_name>``)."""
        return build_evaluator(cfg, dataset_name, output_folder)

    @classmethod
    def test(cls, cfg: CfgNode, model: nn.Module, evaluators: Optional[List[DatasetEvaluator]] = None, *,
             results_dir: str = "inference") -> Dict[str, Any]:
        """Evaluate ``model`` on each of ``DATASETS.TEST``; results are also written to
        ``OUTPUT_DIR/<results_dir>/<dataset>/results.json``. With one test dataset the results
        dict of that dataset is returned, otherwise ``{dataset: results}``. The model runs in
        MODEL.PRECISION (:class:`~seg_research.engine.amp.AutocastInference`)."""
        test_names = list(cfg.DATASETS.TEST)
        if evaluators is not None and len(evaluators) != len(test_names):
            raise ValueError(f"{len(evaluators)} evaluators given for {len(test_names)} datasets in DATASETS.TEST.")
        results: Dict[str, Any] = OrderedDict()
        dtype = autocast_dtype(cfg.MODEL.DEVICE, cfg.MODEL.PRECISION, "MODEL.PRECISION")
        if dtype is not None:
            model = AutocastInference(model, cfg.MODEL.DEVICE, dtype)
        for idx, name in enumerate(test_names):
            loader = cls.build_test_loader(cfg, name)
            evaluator = evaluators[idx] if evaluators is not None else cls.build_evaluator(cfg, name)
            results[name] = inference_on_dataset(model, loader, evaluator)
            if comm.is_main_process():
                logger.info(f"Evaluation results for {name} in csv format:")
                print_csv_format(results[name])
                atomic_write_json(os.path.join(cfg.OUTPUT_DIR, results_dir, name, "results.json"), results[name],
                                  indent=2)
        return results[test_names[0]] if len(results) == 1 else results

    @classmethod
    def test_with_TTA(cls, cfg: CfgNode, model: nn.Module) -> Dict[str, Any]:
        """Evaluate ``model`` with test-time augmentation (``TEST.AUG``: :func:`build_tta_model`
        picks GeneralizedRCNNWithTTA or SemanticSegmentorWithTTA); evaluator files and
        ``results.json`` go to ``OUTPUT_DIR/inference_TTA/<dataset>/``. Returns :meth:`test`'s
        results with ``_TTA`` appended to each top-level key (``{"bbox_TTA": ..., "segm_TTA": ...}``).

        As in detectron2, the trainer does not call it by itself: ``train_net_main`` registers
        ``hooks.EvalHook(0, lambda: trainer.test_with_TTA(cfg, trainer.model))`` when
        ``TEST.AUG.ENABLED`` (after training), and runs it after ``test`` with ``--eval-only``."""
        logger.info("Running inference with test-time augmentation (TEST.AUG) ...")
        evaluators = [cls.build_evaluator(cfg, name, output_folder=os.path.join(cfg.OUTPUT_DIR, "inference_TTA", name))
                      for name in cfg.DATASETS.TEST]
        results = cls.test(cfg, build_tta_model(cfg, model), evaluators, results_dir="inference_TTA")
        return OrderedDict((f"{key}_TTA", value) for key, value in results.items())


def create_ddp_model(model: nn.Module, *, fp16_compression: bool = False, **kwargs) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel when more than one process runs (on this process's
    device; ``kwargs`` go to DDP), else ``model`` itself.

    Args:
        fp16_compression: all-reduce gradients in fp16 (DDP's ``fp16_compress_hook``).
    """
    if comm.get_world_size() == 1:
        return model
    if "device_ids" not in kwargs and next(model.parameters()).is_cuda:
        kwargs["device_ids"] = [comm.get_local_rank()]
    ddp = DistributedDataParallel(model, **kwargs)
    if fp16_compression:
        from torch.distributed.algorithms.ddp_comm_hooks import default as comm_hooks

        ddp.register_comm_hook(state=None, hook=comm_hooks.fp16_compress_hook)
    return ddp
