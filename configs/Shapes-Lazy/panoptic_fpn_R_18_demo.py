# configs/Shapes/panoptic_fpn_R_18_demo.yaml as a LazyConfig: the Mask R-CNN demo (its backbone, RPN,
# ROI heads, optimizer and schedule) plus a light semantic head (32 channels, GN) over "things" +
# sky/ground/water, scored with PQ:
#   python tools/lazyconfig_train_net.py --config-file configs/Shapes-Lazy/panoptic_fpn_R_18_demo.py
from ..common.data.shapes_panoptic_separated import dataloader
from ..common.models.panoptic_fpn import model
from ..common.schedules import cosine_with_warmup
from .mask_rcnn_R_18_FPN_demo import model as _rcnn
from .mask_rcnn_R_18_FPN_demo import optimizer, train

model.backbone = _rcnn.backbone
model.proposal_generator = _rcnn.proposal_generator
model.roi_heads = _rcnn.roi_heads
model.roi_heads.positive_fraction = 0.25  # the YAML twin keeps detectron2's; the Mask R-CNN demo uses 0.5
model.pixel_std = _rcnn.pixel_std
model.sem_seg_head.num_classes = 4  # "things", sky, ground, water
model.sem_seg_head.conv_dims = 32
# outputs are at the records' 256 x 256: COCO's 4096 pixels at ~800 px, scaled down
model.combine_stuff_area_thresh = 512

train.max_iter = 700  # the Mask R-CNN demo trains 1000
train.checkpointer.period = 700
train.output_dir = "./output/panoptic_fpn_lazy_demo"

lr_multiplier = cosine_with_warmup(warmup_iters=50, max_iter=train.max_iter)
