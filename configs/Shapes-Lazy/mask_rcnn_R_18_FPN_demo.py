# configs/Shapes/mask_rcnn_R_18_FPN_demo.yaml as a LazyConfig: Mask R-CNN R18-FPN from scratch on
# Shapes, narrow FPN and heads, 192 px inputs, few proposals and ROIs. Builds the same model
# (tests/config/test_lazy_configs.py checks it):
#   python tools/lazyconfig_train_net.py --config-file configs/Shapes-Lazy/mask_rcnn_R_18_FPN_demo.py
#   python tools/lazyconfig_train_net.py --config-file F train.max_iter=100 optimizer.lr=0.001
from ..common.data.shapes import dataloader
from ..common.models.mask_rcnn_fpn import model
from ..common.optim import AdamW as optimizer
from ..common.schedules import cosine_with_warmup
from ..common.train import train

# ResNet-18 with BatchNorm, everything trained
model.backbone.bottom_up.depth = 18
model.backbone.bottom_up.norm = "BN"
model.backbone.bottom_up.freeze_at = 0
model.backbone.out_channels = 64
model.pixel_std = [57.375, 57.120, 58.395]  # from scratch: unit-variance input, as the YAML twin
model.proposal_generator.anchor_generator.sizes = [[16], [32], [64], [128], [256]]
model.proposal_generator.anchor_generator.round_cells = True  # whole-pixel cell anchors, as the YAML twin
model.proposal_generator.batch_size_per_image = 128
model.proposal_generator.pre_nms_topk = (300, 300)
model.proposal_generator.post_nms_topk = (200, 100)
model.roi_heads.num_classes = 4
model.roi_heads.batch_size_per_image = 64
model.roi_heads.positive_fraction = 0.5
model.roi_heads.box_head.fc_dims = [256, 256]
model.roi_heads.box_predictor.input_shape.channels = 256
model.roi_heads.mask_head.conv_dims = [64, 64, 64]  # 2 convs + the deconv

optimizer.lr = 0.002
optimizer.weight_decay = 1e-4

train.max_iter = 1000
train.clip_gradients = dict(enabled=True, clip_type="norm", clip_value=5.0, norm_type=2.0)
train.checkpointer.period = 1000
train.eval_period = 0
train.log_period = 20
train.seed = 1
train.device = "cpu"
train.output_dir = "./output/mask_rcnn_lazy_demo"

lr_multiplier = cosine_with_warmup(warmup_iters=50, max_iter=train.max_iter)
