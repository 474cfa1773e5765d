"""InstanceSegEvaluator: COCO mask AP of predictions whose classes are a panoptic dataset's thing ids among
all its classes (not 0..K-1), hand-computed, with each COCO backend installed."""
import json

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch

from seg_research.data import DatasetCatalog, MetadataCatalog
from seg_research.evaluation import COCOEvaluator
from seg_research.evaluation.fast_eval_api import available_backends
from seg_research.projects.mask2former import InstanceSegEvaluator
from seg_research.structures import Boxes, Instances

# Five classes in the model, in-order as ADE20K panoptic: things "cat" (dataset id 3, model id 1) and "dog"
# (dataset id 7, model id 4) among stuff.
ALL_CLASSES = ["sky", "cat", "road", "wall", "dog"]
TO_MODEL_ID = {3: 1, 7: 4}


def _rle(mask):
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode()}


def _gt_masks():
    cat = np.zeros((10, 10), bool)
    cat[0:5, 0:5] = True  # 25 pixels
    dog = np.zeros((10, 10), bool)
    dog[6:10, 6:10] = True  # 16 pixels
    return cat, dog


@pytest.fixture
def dataset(tmp_path):
    cat, dog = _gt_masks()
    json_file = tmp_path / "instances.json"
    annotations = [{"id": i + 1, "image_id": 1, "category_id": c, "segmentation": _rle(m), "area": int(m.sum()),
                    "bbox": [0, 0, 1, 1], "iscrowd": 0} for i, (c, m) in enumerate([(3, cat), (7, dog)])]
    json_file.write_text(json.dumps({
        "images": [{"id": 1, "height": 10, "width": 10, "file_name": "a.jpg"}],
        "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}], "annotations": annotations}))
    name = "_test_instance_seg_evaluator"
    DatasetCatalog.register(name, lambda: [])
    MetadataCatalog.get(name).set(json_file=str(json_file), thing_classes=list(ALL_CLASSES),
                                  thing_dataset_id_to_contiguous_id=dict(TO_MODEL_ID))
    yield name
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def _predictions(classes):
    """The cat's mask exactly (IoU 1) and 10 of the dog's 16 pixels (IoU 0.625), with model class ids."""
    cat, dog = _gt_masks()
    part = dog.copy()
    part[8:10, 8:10] = False
    part[9, 6:8] = False  # 16 - 4 - 2 = 10 pixels, all inside the dog
    assert part.sum() == 10 and (part & dog).sum() == 10
    masks = torch.from_numpy(np.stack([cat, part]))
    instances = Instances((10, 10), pred_masks=masks, pred_boxes=Boxes(torch.zeros(2, 4)),
                          scores=torch.tensor([0.9, 0.8]), pred_classes=torch.tensor(classes))
    return [{"image_id": 1, "height": 10, "width": 10}], [{"instances": instances}]


@pytest.mark.parametrize("backend", available_backends())
def test_ap_with_thing_ids_among_all_classes(dataset, tmp_path, backend):
    evaluator = InstanceSegEvaluator(dataset, tasks=("segm",), output_dir=str(tmp_path)).with_backend(backend)
    evaluator.reset()
    inputs, outputs = _predictions([1, 4])
    evaluator.process(inputs, outputs)
    segm = evaluator.evaluate()["segm"]
    # cat: matched at every IoU threshold -> 100; dog: IoU 0.625 matches at 0.50, 0.55, 0.60 of the 10 -> 30
    assert segm["AP-cat"] == pytest.approx(100.0) and segm["AP-dog"] == pytest.approx(30.0)
    assert segm["AP"] == pytest.approx(65.0) and segm["AP50"] == pytest.approx(100.0)
    assert segm["AP75"] == pytest.approx(50.0)
    written = json.loads((tmp_path / "coco_instances_results.json").read_text())
    assert [r["category_id"] for r in written] == [3, 7]  # dataset ids in the results file
    assert outputs[0]["instances"].pred_classes.tolist() == [1, 4]  # the outputs are left as they were


def test_library_coco_evaluator_cannot_map_these_ids(dataset):
    evaluator = COCOEvaluator(dataset, tasks=("segm",))
    evaluator.process(*_predictions([1, 4]))
    with pytest.raises(ValueError, match="not a contiguous id"):  # its classes are 0..4, named by thing_classes
        evaluator.evaluate()


def _set_metadata(name, **metadata):
    json_file = MetadataCatalog.get(name).json_file
    MetadataCatalog.remove(name)
    MetadataCatalog.get(name).set(json_file=json_file, **metadata)


def test_names_one_per_thing_and_contiguous_datasets_unchanged(dataset, tmp_path):
    # one name per thing, in the order of their ids (ADE20K panoptic's metadata)
    _set_metadata(dataset, thing_classes=["cat", "dog"], thing_dataset_id_to_contiguous_id=dict(TO_MODEL_ID))
    evaluator = InstanceSegEvaluator(dataset, tasks=("segm",))
    evaluator.process(*_predictions([1, 4]))
    assert evaluator.evaluate()["segm"]["AP-dog"] == pytest.approx(30.0)
    # model ids 0..K-1 (COCO, Shapes): the same numbers as COCOEvaluator
    _set_metadata(dataset, thing_classes=["cat", "dog"], thing_dataset_id_to_contiguous_id={3: 0, 7: 1})
    results = []
    for cls in (InstanceSegEvaluator, COCOEvaluator):
        evaluator = cls(dataset, tasks=("segm",))
        evaluator.process(*_predictions([0, 1]))
        results.append(evaluator.evaluate())
    assert json.dumps(results[0]) == json.dumps(results[1])  # NaN (no medium or large object) included
    assert results[0]["segm"]["AP"] == pytest.approx(65.0)


def test_stuff_class_prediction_is_an_error(dataset):
    evaluator = InstanceSegEvaluator(dataset, tasks=("segm",))
    with pytest.raises(ValueError, match=r"predicted classes \[2\] are not thing classes"):
        evaluator.process(*_predictions([1, 2]))
