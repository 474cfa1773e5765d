"""Cityscapes instance AP and semantic IoU, scored by the official ``cityscapesscripts``.

Both evaluators write the predictions in the benchmark's submission format into a temporary
folder (shared by the ranks of one machine), then run the package's evaluation on the main
process against the dataset's ``gtFine/<split>/<city>/*_gtFine_{instanceIds,labelIds}.png``
(metadata ``gt_dir``). Only the ground-truth images that were predicted are scored (a
warning says how many of ``gt_dir`` were left out), so a subset of a split evaluates as that
subset.
"""
from __future__ import annotations

import contextlib
import copy
import glob
import logging
import os
import tempfile
from collections import OrderedDict
from typing import Any, Dict, Iterator, List, Tuple

import numpy as np
from PIL import Image

from ..data.catalog import MetadataCatalog
from ..utils import comm
from .build import EVALUATOR_REGISTRY
from .evaluator import DatasetEvaluator
from .numpy_compat import module_globals, numpy_view, write_json

__all__ = ["CityscapesEvaluator", "CityscapesInstanceEvaluator", "CityscapesSemSegEvaluator"]

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def _scoring_in(folder: str, module) -> Iterator[None]:
    """Run the package's scoring with ``folder`` as working directory (it writes ``matches.json``
    there), today's numpy (:mod:`.numpy_compat`), and its ``printError`` exits turned into an error."""
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with module_globals(module, np=numpy_view(), writeDict2JSON=write_json):
            yield
    except SystemExit as e:
        raise RuntimeError(f"cityscapesscripts stopped the evaluation (status {e.code}); its message is printed "
                           "above.") from None
    finally:
        os.chdir(cwd)


def _frame_key(file_name: str) -> str:
    """``<city>_<sequence>_<frame>`` of a Cityscapes file name."""
    return "_".join(os.path.basename(file_name).split("_")[:3])


class CityscapesEvaluator(DatasetEvaluator):
    """Common part: metadata (``gt_dir``, ``thing_classes``) and the shared temporary folder."""

    def __init__(self, dataset_name: str) -> None:
        self._metadata = MetadataCatalog.get(dataset_name)
        if self._metadata.get("gt_dir") is None:
            raise KeyError(f"{type(self).__name__}: dataset '{dataset_name}' has no metadata gt_dir (the "
                           "gtFine/<split> folder); register it with the Cityscapes loaders of "
                           "seg_research.data.datasets.")
        self._dataset_name = dataset_name
        self._working_dir = None

    def reset(self) -> None:
        if self._working_dir is not None:
            self._working_dir.cleanup()
        self._working_dir = tempfile.TemporaryDirectory(prefix="cityscapes_eval_")
        self._temp_dir = comm.all_gather(self._working_dir.name)[0]
        logger.info(f"Writing Cityscapes results to temporary directory {self._temp_dir} ...")

    def _ground_truth_and_predictions(self, gt_suffix: str, pred_suffix: str) -> Tuple[List[str], List[str]]:
        """The ``gt_dir`` files ending in ``gt_suffix`` whose frame has a prediction, and those predictions."""
        gt_files = sorted(glob.glob(os.path.join(self._metadata.gt_dir, "*", "*" + gt_suffix)))
        if not gt_files:
            raise FileNotFoundError(f"No ground truth '*{gt_suffix}' under '{self._metadata.gt_dir}/<city>/' for "
                                    f"{self._dataset_name}; lay out gtFine as the Cityscapes download does.")
        predicted = {_frame_key(f): os.path.join(self._temp_dir, f) for f in os.listdir(self._temp_dir)
                     if f.endswith(pred_suffix)}
        gt_files = [os.path.abspath(f) for f in gt_files if _frame_key(f) in predicted]
        if not gt_files:
            raise ValueError(f"None of the {len(predicted)} predicted images of {self._dataset_name} has ground truth "
                             f"'*{gt_suffix}' in '{self._metadata.gt_dir}'.")
        skipped = len(glob.glob(os.path.join(self._metadata.gt_dir, "*", "*" + gt_suffix))) - len(gt_files)
        if skipped:
            logger.warning(f"{skipped} ground-truth images of {self._metadata.gt_dir} have no prediction and are not "
                           "scored.")
        return gt_files, [predicted[_frame_key(f)] for f in gt_files]

    def _score(self, module, gt_suffix: str, pred_suffix: str, **options: Any) -> Dict[str, Any]:
        """``module.evaluateImgLists`` (the package's scoring) on the predicted ground truth, with a
        copy of the module's ``args`` set for this folder, quiet, without output files, and
        ``options``; the temporary folder is removed afterwards."""
        gt_files, pred_files = self._ground_truth_and_predictions(gt_suffix, pred_suffix)
        args = copy.copy(module.args)
        args.predictionPath = os.path.abspath(self._temp_dir)
        args.predictionWalk = None
        args.JSONOutput = False
        args.colorized = False
        args.quiet = True
        for name, value in options.items():
            setattr(args, name, value)
        try:
            with _scoring_in(self._temp_dir, module):
                return module.evaluateImgLists(pred_files, gt_files, args)
        finally:
            self._working_dir.cleanup()
            self._working_dir = None


class CityscapesInstanceEvaluator(CityscapesEvaluator):
    """Instance mask AP of the Cityscapes benchmark.

    Results: ``{"segm": {"AP", "AP50"}}``, percentages (the package's ``allAp`` and
    ``allAp50%``: mean over the 8 instance classes that have ground truth, and for AP over
    overlaps 0.50:0.95). Predicted classes index ``thing_classes``, which must be
    Cityscapes label names.
    """

    def process(self, inputs: List[dict], outputs: List[dict]) -> None:
        from cityscapesscripts.helpers.labels import name2label

        for inp, out in zip(inputs, outputs, strict=True):
            stem = os.path.splitext(os.path.basename(inp["file_name"]))[0]
            lines = []
            if "instances" in out:
                instances = out["instances"].to("cpu")
                masks = instances.pred_masks.numpy()
                classes_and_scores = zip(instances.pred_classes.tolist(), instances.scores.tolist(), strict=True)
                for i, (cls, score) in enumerate(classes_and_scores):
                    name = self._metadata.thing_classes[cls]
                    if name not in name2label:
                        raise KeyError(f"thing class '{name}' of {self._dataset_name} is not a Cityscapes label name.")
                    png = f"{stem}_{i}_{name.replace(' ', '_')}.png"
                    Image.fromarray((masks[i] > 0.5).astype(np.uint8) * 255).save(os.path.join(self._temp_dir, png))
                    lines.append(f"{png} {name2label[name].id} {score}\n")
            with open(os.path.join(self._temp_dir, stem + "_pred.txt"), "w") as f:
                f.writelines(lines)

    def evaluate(self):
        comm.synchronize()
        if not comm.is_main_process():
            return None
        import cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling as cs_eval

        averages = self._score(cs_eval, "_gtFine_instanceIds.png", "_pred.txt",
                               gtInstancesFile=os.path.join(self._temp_dir, "gtInstances.json"))["averages"]
        return OrderedDict(segm={"AP": 100.0 * float(averages["allAp"]), "AP50": 100.0 * float(averages["allAp50%"])})


class CityscapesSemSegEvaluator(CityscapesEvaluator):
    """Pixel IoU of the Cityscapes benchmark on the 19 train ids.

    Results: ``{"sem_seg": {"IoU", "iIoU", "IoU_sup", "iIoU_sup"}}``, percentages: class and
    instance-weighted class IoU, and the same over the 7 categories (``_sup``). The model's
    ``sem_seg`` channels are train ids (contiguous ``stuff_classes``).
    """

    def process(self, inputs: List[dict], outputs: List[dict]) -> None:
        from cityscapesscripts.helpers.labels import trainId2label

        for inp, out in zip(inputs, outputs, strict=True):
            stem = os.path.splitext(os.path.basename(inp["file_name"]))[0]
            train_ids = out["sem_seg"].argmax(dim=0).to("cpu").numpy()
            label_ids = np.full(train_ids.shape, 255, dtype=np.uint8)
            for train_id, label in trainId2label.items():
                if not label.ignoreInEval:
                    label_ids[train_ids == train_id] = label.id
            Image.fromarray(label_ids).save(os.path.join(self._temp_dir, stem + "_pred.png"))

    def evaluate(self):
        comm.synchronize()
        if not comm.is_main_process():
            return None
        import cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling as cs_eval

        results = self._score(cs_eval, "_gtFine_labelIds.png", "_pred.png")
        return OrderedDict(sem_seg={
            "IoU": 100.0 * results["averageScoreClasses"],
            "iIoU": 100.0 * results["averageScoreInstClasses"],
            "IoU_sup": 100.0 * results["averageScoreCategories"],
            "iIoU_sup": 100.0 * results["averageScoreInstCategories"],
        })


@EVALUATOR_REGISTRY.register(name="cityscapes_instance")
def _build_cityscapes_instance_evaluator(cfg, dataset_name: str, output_folder: str) -> DatasetEvaluator:
    return CityscapesInstanceEvaluator(dataset_name)


@EVALUATOR_REGISTRY.register(name="cityscapes_sem_seg")
def _build_cityscapes_sem_seg_evaluator(cfg, dataset_name: str, output_folder: str) -> DatasetEvaluator:
    return CityscapesSemSegEvaluator(dataset_name)
