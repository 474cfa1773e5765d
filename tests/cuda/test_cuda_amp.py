"""CUDA path (marker ``cuda``; skipped without a GPU): AMP training of each meta-architecture,
SyncBN under a 1-process NCCL group, CUDA inference equal to CPU inference. Run by tools/gpu_check.sh."""
import os

import pytest
import torch

import seg_research.data.datasets.builtin  # noqa: F401  (registers builtin datasets)
from benchmarks.inputs import ours_input, synthetic_samples
from seg_research.config import get_cfg
from seg_research.engine import DefaultTrainer
from seg_research.engine.train_loop import AMPTrainer
from seg_research.modeling import build_model

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INSTANT = ["mask_rcnn_R_18_FPN_instant_test.yaml", "panoptic_fpn_R_18_instant_test.yaml",
           "semantic_fpn_R_18_instant_test.yaml"]


def _cfg(name, tmp_path, *opts):
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO, "configs", "Shapes", name))
    cfg.merge_from_list(["OUTPUT_DIR", str(tmp_path), "MODEL.DEVICE", "cuda", *opts])
    os.makedirs(tmp_path, exist_ok=True)
    return cfg


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("config", INSTANT)
def test_amp_training_of_each_meta_arch_on_cuda(tmp_path, config, precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("GPU without bf16")
    cfg = _cfg(config, tmp_path, "SOLVER.AMP.ENABLED", "True", "SOLVER.AMP.PRECISION", precision,
               "MODEL.PRECISION", precision)
    trainer = DefaultTrainer(cfg)
    assert isinstance(trainer._trainer, AMPTrainer)
    assert (trainer._trainer.grad_scaler is not None) == (precision == "fp16")
    results = trainer.train()
    losses = [v for v, _ in trainer.storage.history("total_loss").values()]
    assert len(losses) == cfg.SOLVER.MAX_ITER and all(torch.isfinite(torch.tensor(losses)))
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    saved = torch.load(tmp_path / "model_final.pth", weights_only=True)
    assert ("grad_scaler" in saved) == (precision == "fp16")
    assert results, "evaluation under MODEL.PRECISION returned nothing"


@pytest.mark.parametrize("config", INSTANT)
def test_cuda_inference_equals_cpu_inference(tmp_path, config):
    cfg = _cfg(config, tmp_path)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    samples = synthetic_samples(2, 64, 0, 1, 1, 3, seed=0)
    with torch.no_grad():
        gpu = model([ours_input(s, False) for s in samples])
        cpu_cfg = cfg.clone()
        cpu_cfg.MODEL.DEVICE = "cpu"
        cpu_model = build_model(cpu_cfg).eval()
        cpu_model.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
        cpu = cpu_model([ours_input(s, False) for s in samples])
    for g, c in zip(gpu, cpu, strict=True):
        if "sem_seg" in c:
            torch.testing.assert_close(g["sem_seg"].cpu(), c["sem_seg"], rtol=1e-3, atol=1e-3)
        if "instances" in c:
            ci, gi = c["instances"], g["instances"].to("cpu")
            n = min(len(ci), len(gi), 5)
            torch.testing.assert_close(gi.scores[:n], ci.scores[:n], rtol=1e-3, atol=1e-3)


def test_sync_bn_under_one_process_nccl(tmp_path):
    import torch.distributed as dist
    from torch import nn

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    dist.init_process_group("nccl", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        bn = nn.SyncBatchNorm(4).cuda().train()
        reference = nn.BatchNorm2d(4).cuda().train()
        x = torch.randn(2, 4, 8, 8, device="cuda", requires_grad=True)
        torch.testing.assert_close(bn(x), reference(x), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(bn.running_mean, reference.running_mean)
        with torch.autocast("cuda", dtype=torch.float16):
            out = bn(x.half())
        assert torch.isfinite(out).all()
    finally:
        dist.destroy_process_group()
