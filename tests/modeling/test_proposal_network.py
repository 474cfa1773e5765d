"""ProposalNetwork (detectron2's RPN-only model): RPN losses in training, proposals at the original size."""
import os

import torch

from seg_research.config import get_cfg
from seg_research.modeling import ProposalNetwork, build_model
from seg_research.structures import Boxes, Instances

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cfg():
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO, "configs", "Shapes", "mask_rcnn_R_18_FPN_instant_test.yaml"))
    cfg.merge_from_list(["MODEL.META_ARCHITECTURE", "ProposalNetwork", "MODEL.MASK_ON", False,
                         "MODEL.RPN.POST_NMS_TOPK_TEST", 7])
    return cfg


def test_proposal_network_trains_the_rpn_and_returns_proposals_at_the_original_size():
    torch.manual_seed(0)
    model = build_model(_cfg())
    assert isinstance(model, ProposalNetwork) and not hasattr(model, "roi_heads")
    image = torch.randint(0, 255, (3, 64, 96), dtype=torch.uint8)
    gt = Instances((64, 96), gt_boxes=Boxes(torch.tensor([[10.0, 8.0, 40.0, 30.0]])),
                   gt_classes=torch.tensor([0]))
    losses = model([{"image": image, "instances": gt}])
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_loc"} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.proposal_generator.rpn_head.objectness_logits.weight.grad.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        (out,) = model([{"image": image, "height": 128, "width": 192}])
    proposals = out["proposals"]
    assert proposals.image_size == (128, 192) and 0 < len(proposals) <= 7
    boxes = proposals.proposal_boxes.tensor
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 192).all() and (boxes[:, 3] <= 128).all()
    logits = proposals.objectness_logits
    assert torch.equal(logits, logits.sort(descending=True).values)  # best first
