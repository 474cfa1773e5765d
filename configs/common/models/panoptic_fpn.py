# Panoptic FPN (Kirillov et al. 2019): the Mask R-CNN R50-FPN of mask_rcnn_fpn.py plus semantic_fpn.py's
# FPN head over "things" + the 53 COCO stuff classes (the `_separated` datasets' convention).
from seg_research.modeling.meta_arch import PanopticFPN

from .mask_rcnn_fpn import model
from .semantic_fpn import model as _semantic

model._target_ = PanopticFPN
model.sem_seg_head = _semantic.sem_seg_head  # over "things" + 53 stuff classes: 54
model.sem_seg_head.loss_weight = 0.5
model.instance_loss_weight = 1.0
model.combine_on = True
model.combine_overlap_thresh = 0.5
model.combine_stuff_area_thresh = 4096
model.combine_instances_score_thresh = 0.5
