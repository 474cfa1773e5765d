# Panoptic FPN (Kirillov et al. 2019): the Mask R-CNN R50-FPN of mask_rcnn_fpn.py plus a semantic
# FPN head over "things" + the 53 COCO stuff classes (the `_separated` datasets' convention).
from seg_research.config import LazyCall as L
from seg_research.layers import ShapeSpec
from seg_research.modeling.meta_arch import PanopticFPN
from seg_research.modeling.sem_seg_heads import SemSegFPNHead

from .mask_rcnn_fpn import model

model._target_ = PanopticFPN
model.sem_seg_head = L(SemSegFPNHead)(
    input_shape={
        f"p{level}": L(ShapeSpec)(stride=2**level, channels="${....backbone.out_channels}")
        for level in (2, 3, 4, 5)
    },
    num_classes=54,  # "things" + 53 stuff classes
    conv_dims=128,
    common_stride=4,
    norm="GN",
    ignore_value=255,
    loss_weight=0.5,
)
model.instance_loss_weight = 1.0
model.combine_on = True
model.combine_overlap_thresh = 0.5
model.combine_stuff_area_thresh = 4096
model.combine_instances_score_thresh = 0.5
