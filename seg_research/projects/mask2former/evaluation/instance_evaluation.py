"""``InstanceSegEvaluator``: COCO mask AP of a model whose class ids index all the classes of a panoptic
dataset, things and stuff interleaved.

A Mask2Former trained on ADE20K or Mapillary Vistas panoptic predicts one of all its classes per query; its
instance output keeps the thing queries, so a prediction's ``pred_classes`` is the contiguous id of a
thing among every class (ADE20K's 150, in-order: a "person" is 12, not its rank 7 among the 100 things).
Those ids are the values of ``thing_dataset_id_to_contiguous_id``, which are then not 0..K-1, so the
library's :class:`~seg_research.evaluation.COCOEvaluator` (contiguous thing ids) cannot map them to the
dataset's category ids. This evaluator does, and is otherwise that evaluator (backends, files, metrics):
upstream Mask2Former's evaluator of the same name, for ``evaluator_type`` ``ade20k_panoptic_seg`` and
``mapillary_vistas_panoptic_seg`` with ``MODEL.MASK_FORMER.TEST.INSTANCE_ON``.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch

from seg_research.data import MetadataCatalog
from seg_research.evaluation import COCOEvaluator

__all__ = ["InstanceSegEvaluator"]


class InstanceSegEvaluator(COCOEvaluator):
    """:class:`~seg_research.evaluation.COCOEvaluator` for predictions whose ``pred_classes`` are the values
    of the dataset's ``thing_dataset_id_to_contiguous_id``, whatever they are (upstream Mask2Former's).

    The K thing classes are those values in ascending order; the k-th is named
    ``thing_classes[value]`` when ``thing_classes`` lists every class (Mapillary Vistas' metadata), else
    ``thing_classes[k]`` (one name per thing, in the same order: ADE20K panoptic's). A dataset whose thing
    ids are already 0..K-1 (COCO, Shapes) is evaluated exactly as by ``COCOEvaluator``.

    Args:
        dataset_name: a registered dataset with ``thing_dataset_id_to_contiguous_id`` and ``thing_classes``
            in its metadata, and COCO instance ground truth (its ``json_file``).
        tasks, distributed, output_dir, max_dets_per_image, use_fast_impl: as ``COCOEvaluator``'s
            (``use_fast_impl``: hotcoco, else pycocotools).

    Raises:
        ValueError: the metadata has no ``thing_dataset_id_to_contiguous_id``, or too few
            ``thing_classes`` to name its things; in :meth:`process`, a predicted class that is not one of
            the things' ids (e.g. a stuff class: the model's instance output must keep things only).
    """

    def __init__(
        self,
        dataset_name: str,
        tasks: Sequence[str] = ("bbox", "segm"),
        distributed: bool = True,
        output_dir: Optional[str] = None,
        *,
        max_dets_per_image: Optional[int] = None,
        use_fast_impl: bool = True,
    ) -> None:
        super().__init__(dataset_name, tasks, distributed, output_dir, max_dets_per_image=max_dets_per_image,
                         use_fast_impl=use_fast_impl)
        meta = MetadataCatalog.get(dataset_name)
        to_contiguous = meta.get("thing_dataset_id_to_contiguous_id")
        if not to_contiguous:
            raise ValueError(f"InstanceSegEvaluator: dataset '{dataset_name}' has no thing_dataset_id_to_contiguous_id "
                             f"in its metadata; set it to {{dataset category id: the model's class id}} of its things.")
        by_model_id = sorted((int(c), int(d)) for d, c in to_contiguous.items())
        names = list(meta.thing_classes)
        if len(names) > by_model_id[-1][0]:  # one name per class of the model (things and stuff)
            self._class_names = [names[c] for c, _ in by_model_id]
        elif len(names) == len(by_model_id):  # one name per thing, in the order of their ids
            self._class_names = names
        else:
            raise ValueError(f"InstanceSegEvaluator: dataset '{dataset_name}' has {len(names)} thing_classes for "
                             f"{len(by_model_id)} things with class ids up to {by_model_id[-1][0]}; thing_classes "
                             f"must name each thing in the order of its id, or every class.")
        # rank k among the things <-> model class id / dataset category id; COCOEvaluator then sees
        # contiguous ranks 0..K-1 (its _to_dataset_id maps ranks, for the results and per-class AP)
        self._model_id_to_rank = {c: k for k, (c, _) in enumerate(by_model_id)}
        rank_to_dataset_id: List[int] = [d for _, d in by_model_id]
        self._to_dataset_id = rank_to_dataset_id.__getitem__

    def process(self, inputs: List[dict], outputs: List[dict]) -> None:
        """As ``COCOEvaluator.process``, with each output's ``pred_classes`` (model class ids) first replaced
        by the things' ranks (the outputs are not modified)."""
        ranked = []
        for out in outputs:
            if "instances" in out:
                instances = out["instances"]
                classes = instances.pred_classes.tolist()
                unknown = sorted({c for c in classes if c not in self._model_id_to_rank})
                if unknown:
                    raise ValueError(
                        f"InstanceSegEvaluator on '{self._dataset_name}': predicted classes {unknown} are not thing "
                        f"classes of the dataset (its thing ids: {sorted(self._model_id_to_rank)}, the values of "
                        f"thing_dataset_id_to_contiguous_id). Check MODEL.SEM_SEG_HEAD.NUM_CLASSES and the metadata.")
                fields = instances.get_fields()
                instances = type(instances)(instances.image_size, **fields)
                instances.pred_classes = torch.as_tensor([self._model_id_to_rank[c] for c in classes],
                                                         dtype=torch.int64)
                out = {**out, "instances": instances}
            ranked.append(out)
        super().process(inputs, ranked)
