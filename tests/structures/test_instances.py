import copy
import pickle

import numpy as np
import pytest
import torch

from seg_research.structures import BitMasks, Boxes, Instances, PolygonMasks


def _square(x0, y0, side):
    return [x0, y0, x0 + side, y0, x0 + side, y0 + side, x0, y0 + side]


def _make_instances():
    inst = Instances((10, 20))
    inst.gt_boxes = Boxes([[0, 0, 2, 2], [1, 1, 5, 5], [4, 4, 8, 9]])
    inst.gt_classes = torch.tensor([2, 0, 1])
    inst.gt_masks = PolygonMasks([[_square(0, 0, 2)], [_square(1, 1, 4)], [_square(4, 4, 4)]])
    inst.scores = torch.tensor([0.9, 0.1, 0.5])
    return inst


def test_fields_access():
    inst = _make_instances()
    assert len(inst) == 3
    assert inst.image_size == (10, 20)
    assert inst.has("gt_classes") and not inst.has("pred_boxes")
    assert inst.get("gt_classes").tolist() == [2, 0, 1]
    assert list(inst.get_fields()) == ["gt_boxes", "gt_classes", "gt_masks", "scores"]
    inst.remove("scores")
    assert not inst.has("scores")
    with pytest.raises(AttributeError, match="Available fields"):
        _ = inst.pred_boxes
    with pytest.raises(KeyError, match="scores"):
        inst.remove("scores")


def test_constructor_kwargs():
    inst = Instances((4, 4), scores=torch.tensor([0.5, 0.2]), pred_classes=torch.tensor([1, 1]))
    assert len(inst) == 2 and inst.pred_classes.tolist() == [1, 1]


def test_length_mismatch_message():
    inst = Instances((10, 10), gt_boxes=Boxes([[0, 0, 1, 1], [0, 0, 2, 2], [1, 1, 3, 3]]))
    with pytest.raises(ValueError) as err:
        inst.gt_classes = torch.tensor([0, 1])
    message = str(err.value)
    assert "'gt_classes' of length 2" in message
    assert "Instances of length 3" in message and "'gt_boxes'" in message


def test_replacing_the_only_field_with_new_length_is_allowed():
    inst = Instances((10, 10), scores=torch.tensor([0.1, 0.2]))
    inst.scores = torch.tensor([0.3])
    assert len(inst) == 1


def test_empty_instances_len_raises():
    with pytest.raises(TypeError, match="without fields"):
        len(Instances((5, 5)))


def test_bool_mask_indexing_selects_every_field():
    inst = _make_instances()
    inst.gt_bitmasks = BitMasks.from_polygon_masks(inst.gt_masks, 10, 20)
    kept = inst[inst.scores > 0.3]
    assert len(kept) == 2
    assert kept.gt_classes.tolist() == [2, 1]
    assert kept.gt_boxes.tensor.tolist() == [[0, 0, 2, 2], [4, 4, 8, 9]]
    assert kept.gt_masks.area().tolist() == [4, 16]
    assert kept.gt_bitmasks.area().tolist() == [4, 16]
    assert kept.image_size == (10, 20)


def test_int_and_negative_indexing():
    inst = _make_instances()
    assert inst[1].gt_classes.tolist() == [0]
    assert inst[-1].gt_classes.tolist() == [1]
    assert inst[np.int64(0)].scores.tolist() == pytest.approx([0.9])
    with pytest.raises(IndexError, match="out of range"):
        inst[3]


def test_cat():
    inst = _make_instances()
    joined = Instances.cat([inst[:1], inst[1:]])
    assert len(joined) == 3
    assert joined.gt_classes.tolist() == [2, 0, 1]
    assert joined.gt_masks.area().tolist() == [4, 16, 16]
    assert torch.equal(joined.gt_boxes.tensor, inst.gt_boxes.tensor)
    other = Instances((11, 20), scores=torch.tensor([1.0]))
    with pytest.raises(ValueError, match="image sizes"):
        Instances.cat([Instances((10, 20), scores=torch.tensor([1.0])), other])


def test_cat_list_field():
    a = Instances((5, 5), names=["a", "b"])
    b = Instances((5, 5), names=["c"])
    assert Instances.cat([a, b]).names == ["a", "b", "c"]


def test_to_moves_fields():
    inst = _make_instances()
    moved = inst.to("cpu")
    assert moved is not inst
    assert moved.gt_boxes.device == torch.device("cpu")
    assert moved.gt_masks is inst.gt_masks
    assert torch.equal(moved.scores, inst.scores)


def test_pickle_and_deepcopy_roundtrip():
    inst = _make_instances()
    for restored in (pickle.loads(pickle.dumps(inst)), copy.deepcopy(inst)):
        assert restored.image_size == (10, 20)
        assert restored.gt_classes.tolist() == [2, 0, 1]
        assert restored.gt_masks.area().tolist() == [4, 16, 16]
