"""Build dataset lists and data loaders from the config."""
from __future__ import annotations

import itertools
import logging
import re
from typing import Any, Callable, Iterator, List, Optional, Sequence

import numpy as np
import torch.utils.data as torchdata

from ..config import configurable
from ..utils import comm
from ..utils.absent import absent_names
from .catalog import DatasetCatalog, MetadataCatalog
from .common import SKIPPED_SAMPLES_KEY, Batch, DatasetFromList, MapDataset
from .errors import DataError
from .mapper import DatasetMapper
from .samplers import (
    GroupedBatchSampler,
    InferenceSampler,
    PlainBatchSampler,
    RepeatFactorTrainingSampler,
    TrainingSampler,
)

__all__ = [
    "get_detection_dataset_dicts",
    "build_detection_train_loader",
    "build_detection_test_loader",
    "build_batch_data_loader",
    "trivial_batch_collator",
    "filter_images_with_few_keypoints",
    "print_instances_class_histogram",
]

logger = logging.getLogger(__name__)


def _check_names(names: Any, key: str = "dataset names") -> List[str]:
    if isinstance(names, str):
        raise TypeError(
            f"{key} must be a list or tuple of registered dataset names, got the string '{names}'. "
            f"Use a tuple: ('{names}',)."
        )
    names = list(names)
    if not names:
        raise ValueError(f"No dataset given ({key} is empty).")
    return names


def _check_category_ids(name: str, dicts: List[dict]) -> None:
    """Every annotation's ``category_id`` must be a contiguous id < len(thing_classes)."""
    meta = MetadataCatalog.get(name)
    num = len(meta.thing_classes) if hasattr(meta, "thing_classes") else None
    for d in dicts:
        for anno in d.get("annotations", ()):
            cid = anno.get("category_id")
            if not isinstance(cid, int) or cid < 0 or (num is not None and cid >= num):
                raise DataError(
                    f"Dataset '{name}' has category_id {cid!r}, but ids must be contiguous integers in "
                    f"[0, {num if num is not None else 'K'}) (0-based; dataset ids are mapped through "
                    f"metadata thing_dataset_id_to_contiguous_id by the loader).",
                    file_name=d.get("file_name"),
                    record=d.get("image_id"),
                )


def filter_images_with_only_crowd_annotations(dataset_dicts: List[dict], dataset_names: Sequence[str]) -> List[dict]:
    """Drop records with no non-crowd annotation; logs how many were removed."""
    kept = [d for d in dataset_dicts if any(a.get("iscrowd", 0) == 0 for a in d.get("annotations", ()))]
    removed = len(dataset_dicts) - len(kept)
    logger.info(
        f"Removed {removed} images with no usable annotations from {', '.join(dataset_names)}; {len(kept)} images "
        f"left (DATALOADER.FILTER_EMPTY_ANNOTATIONS=True; set it False to train on them as negatives)."
    )
    return kept


def get_detection_dataset_dicts(names: Sequence[str] | str, filter_empty: bool = True) -> List[dict]:
    """Load and concatenate the dataset dicts of registered datasets.

    Checks that each dataset is non-empty and that annotation category ids are contiguous
    and within the dataset's ``thing_classes``. With ``filter_empty``, images without any
    non-crowd annotation are dropped (only for datasets with ``annotations``), with a
    log line stating the counts.
    """
    names = _check_names(names)
    all_dicts = []
    for name in names:
        dicts = DatasetCatalog.get(name)
        if not isinstance(dicts, list) or not dicts:
            raise DataError(f"Dataset '{name}' is empty or its loader did not return a list of dicts.")
        _check_category_ids(name, dicts)
        all_dicts.extend(dicts)
    if filter_empty and "annotations" in all_dicts[0]:
        all_dicts = filter_images_with_only_crowd_annotations(all_dicts, names)
        if not all_dicts:
            raise DataError(f"No image with annotations left in {names} after filtering empty ones.")
    return all_dicts


def trivial_batch_collator(batch: List[Any]) -> Batch:
    """Keep a batch as the list of mapped dicts (models take ``list[dict]``), moving the
    counts of bad samples replaced while drawing them (:class:`MapDataset`) to
    ``Batch.skipped_samples``."""
    skipped = sum(item.pop(SKIPPED_SAMPLES_KEY, 0) for item in batch if isinstance(item, dict))
    return Batch(batch, skipped_samples=skipped)


def _worker_pids(message: str) -> List[int]:
    """The pids in torch's "DataLoader worker (pid 12)" / "(pid(s) 12, 13)" messages."""
    match = re.search(r"\(pid(?:\(s\))? ([\d, ]+)\)", message)
    return [int(pid) for pid in re.findall(r"\d+", match.group(1))] if match else []


class _SampleReportingDataLoader(torchdata.DataLoader):
    """A DataLoader over a :class:`MapDataset` whose "worker died" errors name the sample
    the worker was mapping (a crash in a C library, the out-of-memory killer, ...)."""

    def __iter__(self) -> Iterator[Any]:
        iterator = super().__iter__()
        while True:
            try:
                batch = next(iterator)
            except StopIteration:
                return
            except RuntimeError as e:
                pids = _worker_pids(str(e))  # only the "worker died" errors name pids
                if not pids or not isinstance(self.dataset, MapDataset):
                    raise
                raise RuntimeError(
                    f"{e} At that time {self.dataset.describe_in_flight(pids)}. To see the error, map that "
                    "record in the main process (DATALOADER.NUM_WORKERS 0), or check memory use (the kernel's "
                    "out-of-memory killer stops workers with SIGKILL)."
                ) from e
            yield batch


def _data_loader(dataset: MapDataset, num_workers: int, collate_fn: Optional[Callable[[List[Any]], Any]] = None,
                 **kwargs: Any) -> torchdata.DataLoader:
    dataset.track_workers(num_workers)
    return _SampleReportingDataLoader(dataset, num_workers=num_workers,
                                      collate_fn=collate_fn or trivial_batch_collator, **kwargs)


class _SkipBatches:
    """An iterable batch sampler that starts ``start`` batches into ``batch_sampler``."""

    def __init__(self, batch_sampler: PlainBatchSampler, start: int) -> None:
        self.batch_sampler = batch_sampler
        self.start = start

    def __iter__(self):
        return itertools.islice(iter(self.batch_sampler), self.start, None)


def build_batch_data_loader(
    dataset: MapDataset,
    sampler: TrainingSampler | RepeatFactorTrainingSampler,
    total_batch_size: int,
    *,
    group_ids: Optional[Sequence[int]] = None,
    num_workers: int = 0,
    start_iter: int = 0,
    collate_fn: Optional[Callable[[List[Any]], Any]] = None,
) -> torchdata.DataLoader:
    """An infinite loader of per-rank batches (lists of mapped dicts).

    Args:
        dataset: a :class:`MapDataset` accepting ``(position, index)`` items.
        total_batch_size: images per iteration over all ranks; must divide by world size.
        group_ids: if given, only images of the same group id are batched together
            (aspect-ratio grouping).
        start_iter: number of batches to skip (the iteration a resumed run starts at).
        collate_fn: list of mapped dicts -> batch; default :func:`trivial_batch_collator`.
    """
    world_size = comm.get_world_size()
    if total_batch_size <= 0 or total_batch_size % world_size != 0:
        raise ValueError(
            f"SOLVER.IMS_PER_BATCH ({total_batch_size}) must be a positive multiple of the number of processes "
            f"({world_size})."
        )
    batch_size = total_batch_size // world_size
    if group_ids is not None:
        batch_sampler: PlainBatchSampler = GroupedBatchSampler(sampler, group_ids, batch_size)
    else:
        batch_sampler = PlainBatchSampler(sampler, batch_size)
    return _data_loader(dataset, num_workers, collate_fn, batch_sampler=_SkipBatches(batch_sampler, start_iter),
                        persistent_workers=num_workers > 0)


def micro_batch_size(ims_per_batch: int, accumulation_steps: int, world_size: int) -> int:
    """Images per micro-batch over all processes: ``ims_per_batch / accumulation_steps``
    (SOLVER.IMS_PER_BATCH, SOLVER.GRADIENT_ACCUMULATION_STEPS), each process then loading
    ``ims_per_batch / (accumulation_steps * world_size)`` of them per micro-batch."""
    if accumulation_steps < 1 or ims_per_batch % (accumulation_steps * world_size) != 0:
        raise ValueError(
            f"SOLVER.IMS_PER_BATCH ({ims_per_batch}) must be divisible by SOLVER.GRADIENT_ACCUMULATION_STEPS "
            f"({accumulation_steps}) x the number of processes ({world_size}), so that every micro-batch of every "
            f"process has the same whole number of images: use a multiple of {max(accumulation_steps, 1) * world_size}."
        )
    return ims_per_batch // accumulation_steps


def _train_loader_from_config(
    cfg, mapper: Optional[Callable] = None, *, dataset=None, sampler=None, start_iter: int = 0, seed: Optional[int] = None
):
    if dataset is None:
        dataset = get_detection_dataset_dicts(cfg.DATASETS.TRAIN, filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS)
    if mapper is None:
        mapper = DatasetMapper(cfg, is_train=True)
    if seed is None and cfg.SEED >= 0:
        seed = cfg.SEED
    if sampler is None:
        sampler = SAMPLER_BUILDERS.get(cfg.DATALOADER.SAMPLER_TRAIN)
        if sampler is None:
            raise ValueError(
                f"Unknown DATALOADER.SAMPLER_TRAIN '{cfg.DATALOADER.SAMPLER_TRAIN}'; "
                f"choose one of {sorted(SAMPLER_BUILDERS)}."
            )
        sampler = sampler(cfg, dataset, seed)
        logger.info(f"Using training sampler {cfg.DATALOADER.SAMPLER_TRAIN}")
    micro_batches = cfg.SOLVER.GRADIENT_ACCUMULATION_STEPS
    return {
        "dataset": dataset,
        "mapper": mapper,
        "sampler": sampler,
        # with gradient accumulation the loader yields micro-batches, N per iteration (optimizer step)
        "total_batch_size": micro_batch_size(cfg.SOLVER.IMS_PER_BATCH, micro_batches, comm.get_world_size()),
        "aspect_ratio_grouping": cfg.DATALOADER.ASPECT_RATIO_GROUPING,
        "num_workers": cfg.DATALOADER.NUM_WORKERS,
        "start_iter": start_iter * micro_batches,
        "on_bad_sample": cfg.DATALOADER.ON_BAD_SAMPLE,
    }


SAMPLER_BUILDERS = {
    "TrainingSampler": lambda cfg, dataset, seed: TrainingSampler(len(dataset), seed=seed),
    "RepeatFactorTrainingSampler": lambda cfg, dataset, seed: RepeatFactorTrainingSampler(
        RepeatFactorTrainingSampler.repeat_factors_from_category_frequency(dataset, cfg.DATALOADER.REPEAT_THRESHOLD),
        seed=seed,
    ),
}


@configurable(from_config=_train_loader_from_config)
def build_detection_train_loader(
    dataset: List[dict],
    *,
    mapper: Callable[[dict], Any],
    sampler: Optional[TrainingSampler | RepeatFactorTrainingSampler] = None,
    total_batch_size: int,
    aspect_ratio_grouping: bool = True,
    num_workers: int = 0,
    collate_fn: Optional[Callable[[List[Any]], Any]] = None,
    start_iter: int = 0,
    on_bad_sample: str = "error",
) -> torchdata.DataLoader:
    """Infinite training loader: ``build_detection_train_loader(cfg, mapper=None, start_iter=0)``
    or with explicit arguments.

    Each iteration yields this rank's :class:`Batch` (a list) of ``total_batch_size /
    world_size`` mapped dicts. Random augmentations are seeded per draw from the sampler's
    seed, so batches are identical for any ``num_workers`` and after ``--resume``
    (``start_iter``). ``on_bad_sample`` (``DATALOADER.ON_BAD_SAMPLE``): ``"error"`` raises
    the mapper's DataError; ``"skip"`` replaces the sample (see :class:`MapDataset`) and
    counts it in ``Batch.skipped_samples``. A worker that dies is reported with the sample
    it was mapping. ``collate_fn`` (list of mapped dicts -> batch) replaces the default
    :func:`trivial_batch_collator`.
    """
    if sampler is None:
        sampler = TrainingSampler(len(dataset))
    mapped = MapDataset(DatasetFromList(dataset, copy=False), mapper, seed=sampler.seed, on_bad_sample=on_bad_sample)
    group_ids = None
    if aspect_ratio_grouping:  # 0: landscape or square, 1: portrait
        group_ids = [int(r.get("width", 0) < r.get("height", 0)) for r in dataset]
    return build_batch_data_loader(
        mapped,
        sampler,
        total_batch_size,
        group_ids=group_ids,
        num_workers=num_workers,
        start_iter=start_iter,
        collate_fn=collate_fn,
    )


def _test_loader_from_config(cfg, dataset_name: str, mapper: Optional[Callable] = None):
    if mapper is None:
        mapper = DatasetMapper(cfg, is_train=False)
    return {
        "dataset": get_detection_dataset_dicts([dataset_name], filter_empty=False),
        "mapper": mapper,
        "num_workers": cfg.DATALOADER.NUM_WORKERS,
    }


@configurable(from_config=_test_loader_from_config)
def build_detection_test_loader(
    dataset: List[dict], *, mapper: Callable[[dict], Any], sampler: Optional[torchdata.Sampler] = None,
    num_workers: int = 0, collate_fn: Optional[Callable[[List[Any]], Any]] = None,
) -> torchdata.DataLoader:
    """Ordered inference loader, batch size 1; under distributed each rank gets a contiguous
    shard (:class:`InferenceSampler`, unless another ``sampler`` of dataset indices is given).
    Call as ``build_detection_test_loader(cfg, name)``. ``collate_fn`` as for the train loader."""
    sampler = sampler if sampler is not None else InferenceSampler(len(dataset))
    return _data_loader(MapDataset(DatasetFromList(dataset, copy=False), mapper), num_workers, collate_fn,
                        sampler=sampler, batch_size=1)


def filter_images_with_few_keypoints(dataset_dicts: List[dict], min_keypoints_per_image: int) -> List[dict]:
    """The records with at least ``min_keypoints_per_image`` visible keypoints over their annotations
    (COCO ``keypoints`` ``[x1, y1, v1, ...]``, visible when ``v > 0``). seg_research trains no keypoint
    model; detectron2's tools call this when ``MODEL.KEYPOINT_ON`` is set."""
    def visible(record: dict) -> int:
        return sum(int((np.asarray(a["keypoints"][2::3]) > 0).sum())
                   for a in record.get("annotations", []) if "keypoints" in a)

    kept = [d for d in dataset_dicts if visible(d) >= min_keypoints_per_image]
    logger.info(f"Removed {len(dataset_dicts) - len(kept)} images with fewer than {min_keypoints_per_image} "
                f"keypoints; {len(kept)} images left.")
    return kept


def print_instances_class_histogram(dataset_dicts: List[dict], class_names: Sequence[str]) -> None:
    """Log the number of (non-crowd) instances of each class over ``dataset_dicts`` as a table.

    Raises:
        DataError: an annotation's ``category_id`` is outside ``0..len(class_names)-1``, naming the file.
    """
    counts = np.zeros(len(class_names), dtype=np.int64)
    for record in dataset_dicts:
        for anno in record.get("annotations", []):
            if anno.get("iscrowd", 0):
                continue
            cid = anno["category_id"]
            if not 0 <= cid < len(class_names):
                raise DataError(f"{record.get('file_name', '<record>')}: category_id {cid} is not a contiguous id "
                                f"0..{len(class_names) - 1} of the {len(class_names)} classes.")
            counts[cid] += 1
    width = max([len(n) for n in class_names] + [len("category"), len("total")])
    lines = [f"{'category':<{width}}  #instances"] + [
        f"{n:<{width}}  {c}" for n, c in zip(class_names, counts, strict=True)]
    lines.append(f"{'total':<{width}}  {int(counts.sum())}")
    logger.info("Distribution of instances among all {} categories:\n{}".format(len(class_names), "\n".join(lines)))


ABSENT_NAMES = {
    "load_proposals_into_dataset": "precomputed proposals are not supported (no MODEL.LOAD_PROPOSALS); the RPN "
                                   "computes proposals.",
}
__getattr__ = absent_names(__name__, ABSENT_NAMES)
