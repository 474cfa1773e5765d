"""Evaluator protocol and the inference loop that feeds it."""
from __future__ import annotations

import contextlib
import datetime
import logging
import shutil
import tempfile
import time
from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Optional

import torch
from torch import nn
from tqdm import tqdm

from ..utils import comm
from .prediction_shards import read_shards, shard_path, write_shard

__all__ = ["DatasetEvaluator", "DatasetEvaluators", "inference_on_dataset", "inference_context",
           "gather_predictions"]

logger = logging.getLogger(__name__)


class DatasetEvaluator:
    """Accumulates (input, output) pairs with :meth:`process` and computes metrics in
    :meth:`evaluate`. ``evaluate`` runs on every rank; it returns the results dict on the
    main process and may return ``None`` elsewhere."""

    def reset(self) -> None:
        """Called before a new evaluation round."""

    def process(self, inputs: List[dict], outputs: List[dict]) -> None:
        """Consume one batch: ``inputs`` as given to the model, ``outputs`` it returned."""

    def evaluate(self) -> Optional[Dict[str, Dict[str, float]]]:
        """Return ``{task: {metric: value}}`` (percentages), e.g. ``{"sem_seg": {"mIoU": 71.2}}``."""
        raise NotImplementedError


class DatasetEvaluators(DatasetEvaluator):
    """Several evaluators run together; their result dicts are merged (task names must differ)."""

    def __init__(self, evaluators: Iterable[DatasetEvaluator]) -> None:
        self._evaluators = list(evaluators)

    def reset(self) -> None:
        for e in self._evaluators:
            e.reset()

    def process(self, inputs: List[dict], outputs: List[dict]) -> None:
        for e in self._evaluators:
            e.process(inputs, outputs)

    def evaluate(self) -> Dict[str, Any]:
        results: Dict[str, Any] = OrderedDict()
        for e in self._evaluators:
            result = e.evaluate()
            if comm.is_main_process() and result is not None:
                for k, v in result.items():
                    if k in results:
                        raise KeyError(f"Two evaluators returned results for the same task '{k}'.")
                    results[k] = v
        return results


def gather_predictions(records: List[Dict[str, Any]], output_dir: Optional[str], prefix: str
                       ) -> Optional[List[Dict[str, Any]]]:
    """Every rank's ``records`` (JSON-serialisable dicts), rank 0's first, on the main process;
    None on the others. Call it on every rank.

    Each other rank writes its records to a shard file (:mod:`.prediction_shards`, atomic) in
    ``output_dir``, or, without one, in a temporary folder that rank 0 makes when all ranks run
    on one machine; after a barrier the main process reads the shards line by line and deletes
    them. So the main process never holds the other ranks' pickled predictions, only the parsed
    records, and its own records once (they are not written and read back). A multi-machine run
    without ``output_dir`` has no shared folder: it falls back to ``comm.gather`` (with a warning).
    One process returns ``records`` as they are.

    Args:
        records: this rank's records.
        output_dir: a folder every rank can write and the main process can read (None: see above).
        prefix: shard file name prefix, unique per evaluator writing into ``output_dir``.
    """
    world_size = comm.get_world_size()
    if world_size == 1:
        return records
    folder, temporary = output_dir, output_dir is None
    if temporary:
        if comm.get_local_size() != world_size:
            logger.warning(f"Gathering {prefix} predictions of {world_size} processes on several machines without "
                           f"an output folder: all of them pass through the main process's memory at once. Give "
                           f"the evaluator an output_dir on a shared filesystem to gather through shard files.")
            gathered = comm.gather(records, dst=0)
            return [r for rank_records in gathered for r in rank_records] if comm.is_main_process() else None
        folder = comm.all_gather(tempfile.mkdtemp(prefix="eval_shards_") if comm.is_main_process() else None)[0]
    if not comm.is_main_process():  # the main process keeps its own records as they are
        write_shard(shard_path(folder, prefix, comm.get_rank(), world_size), records)
    comm.synchronize()
    if not comm.is_main_process():
        return None
    paths = [shard_path(folder, prefix, rank, world_size) for rank in range(1, world_size)]
    try:
        return records + list(read_shards(paths, delete=True))
    finally:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def inference_context(model: nn.Module):
    """Put ``model`` in eval mode for the block, restoring its previous mode after."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def inference_on_dataset(
    model: nn.Module, data_loader: Iterable, evaluator: Optional[DatasetEvaluator | List[DatasetEvaluator]]
) -> Dict[str, Any]:
    """Run ``model`` on every batch of ``data_loader`` under ``torch.no_grad`` and eval mode,
    feed the evaluator, and return its results. Shows a progress bar on the main process
    and logs the total and per-image inference time (model time, excluding data loading).
    """
    if evaluator is None:
        evaluator = DatasetEvaluators([])
    elif isinstance(evaluator, (list, tuple)):
        evaluator = DatasetEvaluators(evaluator)
    evaluator.reset()
    total = len(data_loader)  # type: ignore[arg-type]
    logger.info(f"Start inference on {total} batches")
    num_warmup = min(5, total - 1)
    start = time.perf_counter()
    compute_time = 0.0
    with inference_context(model), torch.no_grad():
        progress = tqdm(data_loader, total=total, desc="inference", disable=not comm.is_main_process(),
                        dynamic_ncols=True, leave=False)
        for idx, inputs in enumerate(progress):
            if idx == num_warmup:
                start, compute_time = time.perf_counter(), 0.0
            t0 = time.perf_counter()
            outputs = model(inputs)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            compute_time += time.perf_counter() - t0
            evaluator.process(inputs, outputs)
    total_time = time.perf_counter() - start
    timed = max(total - num_warmup, 1)
    logger.info(
        f"Total inference time: {datetime.timedelta(seconds=int(total_time))} ({total_time / timed:.4f} s / batch "
        f"per device, on {comm.get_world_size()} devices); pure compute {compute_time / timed:.4f} s / batch"
    )
    results = evaluator.evaluate()
    return results if results is not None else {}
