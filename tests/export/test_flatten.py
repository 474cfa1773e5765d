"""flatten_to_tuple / TracingAdapter: rich model I/O to tuples of tensors and back (detectron2's contract)."""
import pytest
import torch
from torch import nn

from seg_research.export import TracingAdapter, flatten_to_tuple
from seg_research.structures import Boxes, Instances


def test_nested_structure_round_trips_with_dotted_names():
    boxes = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    obj = [{"image": torch.zeros(3, 2, 2), "extra": (torch.ones(1), torch.ones(2))},
           {"instances": Instances((5, 7), scores=torch.tensor([0.5]), pred_boxes=Boxes(boxes))}]
    flat, schema = flatten_to_tuple(obj)
    # dicts in sorted key order, Instances by field name, Boxes as their tensor
    assert schema.names() == ["0.extra.0", "0.extra.1", "0.image", "1.instances.pred_boxes", "1.instances.scores"]
    assert len(flat) == 5 and flat[3] is boxes
    rebuilt = schema(flat)
    assert isinstance(rebuilt, list) and isinstance(rebuilt[0]["extra"], tuple)
    assert rebuilt[0]["image"] is obj[0]["image"]
    instances = rebuilt[1]["instances"]
    assert instances.image_size == (5, 7)
    assert torch.equal(instances.pred_boxes.tensor, boxes)
    assert torch.equal(instances.scores, torch.tensor([0.5]))


def test_schema_rebuilds_other_values_of_the_same_structure():
    _, schema = flatten_to_tuple({"a": torch.zeros(1), "b": [torch.zeros(2)]})
    out = schema((torch.tensor([4.0]), torch.tensor([5.0, 6.0])))
    assert out["a"].tolist() == [4.0] and out["b"][0].tolist() == [5.0, 6.0]


class _Doubler(nn.Module):
    def forward(self, inputs):
        return [{"twice": x["image"] * 2, "total": x["image"].sum()} for x in inputs]


def test_tracing_adapter_traces_list_of_dicts_and_rebuilds_outputs():
    image = torch.arange(6, dtype=torch.float32).view(1, 2, 3)
    adapter = TracingAdapter(_Doubler(), [{"image": image}])
    traced = torch.jit.trace(adapter, adapter.flattened_inputs, check_trace=False)
    outputs = adapter.outputs_schema(traced(torch.ones(1, 2, 3)))
    assert outputs[0]["twice"].tolist() == [[[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]]
    assert outputs[0]["total"].item() == 6.0
    assert adapter.outputs_schema.names() == ["0.total", "0.twice"]


def test_tracing_adapter_refuses_non_tensor_inputs():
    with pytest.raises(ValueError, match=r"\['0.0.height'\] are not tensors"):
        TracingAdapter(_Doubler(), [{"image": torch.zeros(1, 2, 2), "height": 2}])


def test_dump_torchscript_ir_writes_code_graph_and_repr(tmp_path):
    from seg_research.export import dump_torchscript_IR

    traced = torch.jit.trace(nn.Sequential(nn.Linear(2, 3), nn.ReLU()), torch.zeros(1, 2))
    dump_torchscript_IR(traced, str(tmp_path))
    files = {p.name: p.read_text() for p in tmp_path.iterdir()}
    assert sorted(files) == ["model.txt", "model_ts_IR.txt", "model_ts_IR_inlined.txt", "model_ts_code.txt"]
    assert "aten::linear" in files["model_ts_IR_inlined.txt"] and "aten::relu" in files["model_ts_IR_inlined.txt"]
    assert "== <root> ==" in files["model_ts_code.txt"] and "def forward" in files["model_ts_code.txt"]
    assert "Linear" in files["model.txt"]
