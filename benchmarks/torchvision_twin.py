"""torchvision's ``MaskRCNN`` built with a config's settings: the reference ``--compare torchvision`` times."""
from __future__ import annotations

from torch import nn
from torchvision.models import resnet
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import FrozenBatchNorm2d, MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from seg_research.checkpoint.torchvision_maskrcnn import convert_torchvision_maskrcnn_state_dict
from seg_research.config import CfgNode, ConfigError


def _check_torchvision_comparable(cfg: CfgNode) -> None:
    """Raise ConfigError unless torchvision's Mask R-CNN classes can express the config."""
    m = cfg.MODEL
    problems = []
    if m.META_ARCHITECTURE != "GeneralizedRCNN" or not m.MASK_ON:
        problems.append("MODEL.META_ARCHITECTURE GeneralizedRCNN with MODEL.MASK_ON True")
    if m.BACKBONE.NAME != "build_resnet_fpn_backbone" or m.RESNETS.DEPTH not in (18, 34, 50, 101, 152):
        problems.append("a ResNet-FPN backbone (MODEL.BACKBONE.NAME build_resnet_fpn_backbone, DEPTH 18..152)")
    if m.RESNETS.NORM not in ("BN", "FrozenBN") or m.FPN.NORM or m.RESNETS.NUM_GROUPS != 1:
        problems.append("MODEL.RESNETS.NORM BN or FrozenBN, MODEL.FPN.NORM '', MODEL.RESNETS.NUM_GROUPS 1")
    if list(m.FPN.IN_FEATURES) != ["res2", "res3", "res4", "res5"] or list(m.RPN.IN_FEATURES) != [
            "p2", "p3", "p4", "p5", "p6"] or list(m.ROI_HEADS.IN_FEATURES) != ["p2", "p3", "p4", "p5"]:
        problems.append("FPN on res2..res5, RPN on p2..p6 and ROI heads on p2..p5")
    if m.ROI_BOX_HEAD.NUM_CONV != 0 or m.ROI_BOX_HEAD.NUM_FC != 2 or m.ROI_MASK_HEAD.NORM:
        problems.append("MODEL.ROI_BOX_HEAD NUM_CONV 0 and NUM_FC 2, MODEL.ROI_MASK_HEAD.NORM ''")
    if len(m.ANCHOR_GENERATOR.SIZES) != 5 or any(len(s) != 1 for s in m.ANCHOR_GENERATOR.SIZES):
        problems.append("one MODEL.ANCHOR_GENERATOR.SIZES entry per level p2..p6")
    if m.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG or m.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK:
        problems.append("class-specific boxes and masks")
    if problems:
        raise ConfigError("--compare torchvision builds torchvision's MaskRCNN with this config's settings, which "
                          f"needs: {'; '.join(problems)}.")


def torchvision_maskrcnn_from_cfg(cfg: CfgNode, image_size: int) -> MaskRCNN:
    """torchvision's ``MaskRCNN`` with the architecture and sampling settings of ``cfg``.

    Same ResNet depth and norm (``BatchNorm2d``/``FrozenBatchNorm2d``), frozen stages
    (``trainable_layers = 5 - FREEZE_AT``), FPN channels, anchors, RPN and ROI-head sampling
    (batch sizes, positive fractions, IoU thresholds, pre/post-NMS top-k, NMS thresholds), pooler
    resolutions and sampling ratios, head widths, box coder weights, test thresholds and
    normalization. Its transform resizes to ``image_size`` (both sides), i.e. not at all for the
    square inputs of this tool. Not expressible in torchvision and left as torchvision does
    it: its poolers use ``aligned=False`` (same cost), its RPN drops boxes smaller than 1e-3 px.
    """
    _check_torchvision_comparable(cfg)
    m = cfg.MODEL
    norm_layer = FrozenBatchNorm2d if m.RESNETS.NORM == "FrozenBN" else nn.BatchNorm2d
    body = getattr(resnet, f"resnet{m.RESNETS.DEPTH}")(weights=None, norm_layer=norm_layer)
    # detectron2's FREEZE_AT k freezes the stem and the first k - 1 stages; torchvision trains the last 5 - k
    trainable = ["layer4", "layer3", "layer2", "layer1", "conv1"][: max(0, 5 - m.BACKBONE.FREEZE_AT)]
    if m.BACKBONE.FREEZE_AT == 0:
        trainable.append("bn1")
    for name, param in body.named_parameters():
        param.requires_grad_(any(name.startswith(prefix) for prefix in trainable))
    stage2_channels = body.inplanes // 8
    channels = m.FPN.OUT_CHANNELS
    backbone = BackboneWithFPN(body, {f"layer{k}": str(k - 1) for k in range(1, 5)},
                               [stage2_channels * 2 ** k for k in range(4)], channels, extra_blocks=LastLevelMaxPool())
    box, mask, heads, rpn = m.ROI_BOX_HEAD, m.ROI_MASK_HEAD, m.ROI_HEADS, m.RPN
    num_classes = heads.NUM_CLASSES + 1
    bgr = cfg.INPUT.FORMAT == "BGR"  # torchvision gets RGB images
    levels = ["0", "1", "2", "3"]
    return MaskRCNN(
        backbone,
        min_size=image_size, max_size=image_size,
        image_mean=[v / 255 for v in (m.PIXEL_MEAN[::-1] if bgr else m.PIXEL_MEAN)],
        image_std=[v / 255 for v in (m.PIXEL_STD[::-1] if bgr else m.PIXEL_STD)],
        rpn_anchor_generator=AnchorGenerator(tuple(tuple(s) for s in m.ANCHOR_GENERATOR.SIZES),
                                             tuple(tuple(m.ANCHOR_GENERATOR.ASPECT_RATIOS[0]) for _ in range(5))),
        rpn_pre_nms_top_n_train=rpn.PRE_NMS_TOPK_TRAIN, rpn_pre_nms_top_n_test=rpn.PRE_NMS_TOPK_TEST,
        rpn_post_nms_top_n_train=rpn.POST_NMS_TOPK_TRAIN, rpn_post_nms_top_n_test=rpn.POST_NMS_TOPK_TEST,
        rpn_nms_thresh=rpn.NMS_THRESH, rpn_fg_iou_thresh=rpn.IOU_THRESHOLDS[-1],
        rpn_bg_iou_thresh=rpn.IOU_THRESHOLDS[0], rpn_batch_size_per_image=rpn.BATCH_SIZE_PER_IMAGE,
        rpn_positive_fraction=rpn.POSITIVE_FRACTION,
        box_roi_pool=MultiScaleRoIAlign(levels, box.POOLER_RESOLUTION, box.POOLER_SAMPLING_RATIO),
        box_head=TwoMLPHead(channels * box.POOLER_RESOLUTION ** 2, box.FC_DIM),
        box_predictor=FastRCNNPredictor(box.FC_DIM, num_classes),
        box_score_thresh=heads.SCORE_THRESH_TEST, box_nms_thresh=heads.NMS_THRESH_TEST,
        box_detections_per_img=cfg.TEST.DETECTIONS_PER_IMAGE,
        box_fg_iou_thresh=heads.IOU_THRESHOLDS[-1], box_bg_iou_thresh=heads.IOU_THRESHOLDS[0],
        box_batch_size_per_image=heads.BATCH_SIZE_PER_IMAGE, box_positive_fraction=heads.POSITIVE_FRACTION,
        bbox_reg_weights=tuple(box.BBOX_REG_WEIGHTS),
        mask_roi_pool=MultiScaleRoIAlign(levels, mask.POOLER_RESOLUTION, mask.POOLER_SAMPLING_RATIO),
        mask_head=MaskRCNNHeads(channels, [mask.CONV_DIM] * mask.NUM_CONV, 1),
        mask_predictor=MaskRCNNPredictor(mask.CONV_DIM if mask.NUM_CONV else channels, mask.CONV_DIM, num_classes),
    )


def load_torchvision_weights(model: nn.Module, tv_model: MaskRCNN) -> None:
    """Start our model from torchvision's (random) weights, so both detect the same boxes."""
    converted = convert_torchvision_maskrcnn_state_dict(tv_model.state_dict())
    missing, unexpected = model.load_state_dict(converted, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ConfigError(f"The config's model does not have torchvision's layout: missing {missing[:5]}, "
                          f"unexpected {unexpected[:5]}.")
