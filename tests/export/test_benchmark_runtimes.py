"""tools/benchmark.py --task inference --runtime: the model and its exported files timed in one run."""
import importlib.util
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "Shapes", "semantic_fpn_R_18_instant_test.yaml")


def _tool():
    spec = importlib.util.spec_from_file_location("_tool_benchmark_runtimes", os.path.join(REPO, "tools", "benchmark.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("extra", [["--task", "train"], ["--task", "inference", "--compare", "torchvision"],
                                   ["--task", "inference", "--precision", "bf16"]])
def test_runtime_is_for_fp32_inference_alone(extra, capsys):
    with pytest.raises(SystemExit):
        _tool().parse_args(["--config-file", CONFIG, *extra, "--runtime", "torch", "onnxruntime"])
    assert "--runtime times inference in fp32" in capsys.readouterr().err


@pytest.mark.slow
def test_runtimes_are_timed_on_the_same_images_with_their_ratio(tmp_path):
    records = _tool().main(["--config-file", CONFIG, "--task", "inference", "--runtime", "torch", "torchscript",
                            "onnxruntime", "--iters", "2", "--warmup", "1", "--threads", "1", "MODEL.DEVICE", "cpu"])
    assert [r["runtime"] for r in records] == ["torch", "torchscript", "onnxruntime"]
    assert records[0]["ratio_to_torch"] == 1.0
    for record in records:
        assert record["n"] == 2 and record["median_s"] > 0 and record["raw_median_s"] > 0
        assert record["image_size"] == records[0]["image_size"]
        assert record["ratio_to_torch"] == round(record["median_s"] / records[0]["median_s"], 3)
    assert records[2]["ort_threads"] == 1 and records[1]["export_s"] > 0


@pytest.mark.slow
def test_op_profiles_of_both_runtimes(tmp_path):
    import numpy as np
    import torch

    from benchmarks.runtimes import onnxruntime_op_profile, torch_op_profile
    from seg_research.export.runtime import ONNX_FILE

    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    torch.onnx.export(conv, (torch.zeros(1, 3, 8, 8),), dynamo=True).save(str(tmp_path / ONNX_FILE))
    ops = onnxruntime_op_profile(str(tmp_path), [np.zeros((1, 3, 8, 8), np.float32)] * 2)
    assert "Conv" in ops and all(ms >= 0 for ms in ops.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == [ONNX_FILE]  # the profiler's JSON was not left behind

    class Model(torch.nn.Module):  # the model I/O contract: a list of {"image": ...}
        def forward(self, inputs):
            return [conv(x["image"][None]) for x in inputs]

    ops = torch_op_profile(Model(), [torch.zeros(3, 8, 8)] * 2)
    assert any("conv" in op for op in ops) and list(ops.values()) == sorted(ops.values(), reverse=True)
