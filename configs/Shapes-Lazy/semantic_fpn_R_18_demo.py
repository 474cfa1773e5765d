# configs/Shapes/semantic_fpn_R_18_demo.yaml as a LazyConfig: Semantic FPN R18-FPN from scratch on
# Shapes' 7 classes, 192 px inputs, a 128-channel FPN and a 64-channel GN head:
#   python tools/lazyconfig_train_net.py --config-file configs/Shapes-Lazy/semantic_fpn_R_18_demo.py
from ..common.data.shapes_sem_seg import dataloader
from ..common.models.semantic_fpn import model
from ..common.optim import AdamW as optimizer
from ..common.schedules import cosine_with_warmup
from ..common.train import train

model.backbone.bottom_up.depth = 18
model.backbone.bottom_up.norm = "BN"
model.backbone.bottom_up.freeze_at = 0
model.backbone.out_channels = 128
model.sem_seg_head.num_classes = 7
model.sem_seg_head.conv_dims = 64

dataloader.train.num_workers = 1

optimizer.lr = 0.002
optimizer.weight_decay = 1e-4

train.max_iter = 600
train.checkpointer.period = 150
train.eval_period = 150
train.log_period = 20
train.seed = 1
train.device = "cpu"
train.output_dir = "./output/semantic_fpn_lazy_demo"

lr_multiplier = cosine_with_warmup(warmup_iters=50, max_iter=train.max_iter)
