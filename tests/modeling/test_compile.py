"""MODEL.COMPILE: parts compiled in place by build_model, same keys and same numbers as eager."""
import os
import sys

import pytest
import torch

from seg_research.config import get_cfg
from seg_research.modeling import build_model, compile_model

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "helpers"))
import tiny_semseg  # noqa: E402, F401  (registers TinySemSegNet)

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "helpers", "configs",
                      "tiny_semseg_instant_test.yaml")


def _cfg(*opts):
    cfg = get_cfg()
    cfg.merge_from_file(CONFIG)
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", *opts])
    return cfg


def _batch(seed):
    g = torch.Generator().manual_seed(seed)
    return [{"image": torch.randint(0, 256, (3, 64, 64), generator=g, dtype=torch.uint8).float(),
             "sem_seg": torch.randint(0, 4, (64, 64), generator=g)} for _ in range(2)]


@pytest.mark.slow  # inductor compiles C++ kernels: ~30 s on 2 cores
def test_compiled_model_keeps_state_dict_and_matches_eager():
    torch.manual_seed(0)
    eager = build_model(_cfg())
    torch.manual_seed(0)
    compiled = build_model(_cfg("MODEL.COMPILE.ENABLED", "True", "MODEL.COMPILE.PARTS", "['stages.2']"))
    # compiled in place: the same keys (no "_orig_mod." prefix) and, from the same seed, the same values
    assert list(compiled.state_dict()) == list(eager.state_dict())
    for (k, a), b in zip(eager.state_dict().items(), compiled.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    batch = _batch(1)
    losses = [m(batch)["loss_sem_seg"] for m in (eager, compiled)]
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # the stages went through dynamo
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-4, atol=1e-5)
    for loss in losses:
        loss.backward()
    for (name, p), q in zip(eager.named_parameters(), compiled.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-3, atol=1e-5, msg=name)
    eager.eval(), compiled.eval()
    with torch.no_grad():
        outputs = [m([{"image": b["image"]} for b in batch]) for m in (eager, compiled)]
    for a, b in zip(*outputs, strict=True):
        torch.testing.assert_close(b["sem_seg"], a["sem_seg"], rtol=1e-4, atol=1e-4)


def test_compile_model_refuses_unknown_parts_and_modes():
    model = build_model(_cfg())
    with pytest.raises(ValueError, match=r"PARTS names 'backbone'.*TinySemSegNet.*\['predictor', 'stages'\]"):
        compile_model(model, ["backbone"])
    with pytest.raises(ValueError, match=r"MODE 'fast' is not one of .*'max-autotune'"):
        compile_model(model, ["stages"], mode="fast")
    with pytest.raises(ValueError, match="PARTS is empty"):
        compile_model(model, [])
    with pytest.raises(ValueError, match="PARTS names 'stages.9'"):
        build_model(_cfg("MODEL.COMPILE.ENABLED", "True", "MODEL.COMPILE.PARTS", "['stages.9']"))
