"""Write tests/checkpoint/fixtures/d2_<name>.npz: detectron2 v0.6's outputs for the models of
``detectron2_parity.CONFIGS`` with generated weights. Run once under the measurement-only
detectron2 of ``../shared/anchors`` (never by the tests, never a dependency)::

    /work/anchor_venv/bin/python tests/checkpoint/make_detectron2_fixtures.py
"""
import json
import os
import sys

import numpy as np
import torch
from detectron2 import model_zoo
from detectron2.config import get_cfg
from detectron2.layers import FrozenBatchNorm2d
from detectron2.modeling import build_model

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import detectron2_parity as parity  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def calibrate_norms(model, inputs):
    """Set every FrozenBatchNorm2d's statistics from its input on the first call (per-channel
    mean / variance over the batch), so that the random network keeps unit-scale activations."""
    done = set()

    def hook(module, args):
        if module in done:
            return
        x = args[0].detach()
        if x.numel() == 0:
            return
        module.running_mean.copy_(x.mean(dim=(0, 2, 3)))
        module.running_var.copy_(x.var(dim=(0, 2, 3)) + 1e-3)
        done.add(module)

    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, FrozenBatchNorm2d)]
    with torch.no_grad():
        model(inputs)
    for h in handles:
        h.remove()


def main():
    os.makedirs(OUT, exist_ok=True)
    image = parity.make_image()
    inputs = [{"image": torch.as_tensor(image.transpose(2, 0, 1).copy()).float(),
               "height": image.shape[0], "width": image.shape[1]}]
    for name, config in parity.CONFIGS.items():
        cfg = get_cfg()
        cfg.merge_from_file(model_zoo.get_config_file(config))
        cfg.merge_from_list(parity.OPTS)
        model = build_model(cfg).eval()
        keys_shapes = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
        state = parity.generated_state_dict(
            keys_shapes, {k: np.zeros(s, np.float32) if k.endswith("mean") else np.ones(s, np.float32)
                          for k, s in keys_shapes})
        model.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
        calibrate_norms(model, inputs)
        with torch.no_grad():
            out = model(inputs)[0]
        arrays = {"keys_shapes": np.array(json.dumps(keys_shapes)),
                  "num_params": np.array(sum(p.numel() for p in model.parameters()))}
        for k in parity.norm_stat_names(model.state_dict()):
            arrays["stat/" + k] = model.state_dict()[k].numpy()
        if "instances" in out:
            inst = out["instances"]
            arrays["boxes"] = inst.pred_boxes.tensor.numpy()
            arrays["scores"] = inst.scores.numpy()
            arrays["classes"] = inst.pred_classes.numpy()
            arrays["masks"] = np.packbits(inst.pred_masks[: parity.NUM_MASKS].numpy(), axis=-1)
        if "sem_seg" in out:
            logits = out["sem_seg"]
            arrays["sem_seg_logits"] = logits[:, :: parity.SEM_STRIDE, :: parity.SEM_STRIDE].numpy()
            arrays["sem_seg_argmax"] = logits.argmax(0).numpy().astype(np.uint8)
        if "panoptic_seg" in out:
            seg, info = out["panoptic_seg"]
            arrays["panoptic_seg"] = seg.numpy().astype(np.int32)
            arrays["panoptic_info"] = np.array(
                [[s["id"], s["category_id"], int(s["isthing"])] for s in info], np.int64).reshape(-1, 3)
        np.savez_compressed(os.path.join(OUT, f"d2_{name}.npz"), **arrays)
        summary = {k: v.shape for k, v in arrays.items() if not k.startswith("stat/")}
        print(name, arrays["num_params"], summary, "detections:", len(arrays.get("scores", [])),
              "top scores:", arrays.get("scores", np.zeros(0))[:5])


if __name__ == "__main__":
    main()
