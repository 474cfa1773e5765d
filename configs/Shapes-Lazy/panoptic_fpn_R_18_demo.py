# configs/Shapes/panoptic_fpn_R_18_demo.yaml as a LazyConfig: the Mask R-CNN demo plus a light
# semantic head (32 channels, GN) over "things" + sky/ground/water, scored with PQ:
#   python tools/lazyconfig_train_net.py --config-file configs/Shapes-Lazy/panoptic_fpn_R_18_demo.py
from ..common.data.shapes_panoptic_separated import dataloader
from ..common.models.panoptic_fpn import model
from ..common.optim import AdamW as optimizer
from ..common.schedules import cosine_with_warmup
from ..common.train import train

model.backbone.bottom_up.depth = 18
model.backbone.bottom_up.norm = "BN"
model.backbone.bottom_up.freeze_at = 0
model.backbone.out_channels = 64
model.proposal_generator.anchor_generator.sizes = [[16], [32], [64], [128], [256]]
model.proposal_generator.batch_size_per_image = 128
model.proposal_generator.pre_nms_topk = (300, 300)
model.proposal_generator.post_nms_topk = (200, 100)
model.roi_heads.num_classes = 4
model.roi_heads.batch_size_per_image = 64
model.roi_heads.box_head.fc_dims = [256, 256]
model.roi_heads.box_predictor.input_shape.channels = 256
model.roi_heads.mask_head.conv_dims = [64, 64, 64]
model.sem_seg_head.num_classes = 4  # "things", sky, ground, water
model.sem_seg_head.conv_dims = 32
# outputs are at the records' 256 x 256: COCO's 4096 pixels at ~800 px, scaled down
model.combine_stuff_area_thresh = 512

optimizer.lr = 0.002
optimizer.weight_decay = 1e-4

train.max_iter = 700
train.clip_gradients = dict(enabled=True, clip_type="norm", clip_value=5.0, norm_type=2.0)
train.checkpointer.period = 700
train.eval_period = 0
train.log_period = 20
train.seed = 1
train.device = "cpu"
train.output_dir = "./output/panoptic_fpn_lazy_demo"

lr_multiplier = cosine_with_warmup(warmup_iters=50, max_iter=train.max_iter)
