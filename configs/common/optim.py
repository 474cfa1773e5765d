# Optimizers over seg_research.solver.get_default_optimizer_params groups. The training script
# sets optimizer.params.model to the built model; the groups' lr and weight decay follow the
# optimizer's own lr / weight_decay keys (override those, e.g. optimizer.lr=0.01).
import torch

from seg_research.config import LazyCall as L
from seg_research.solver import get_default_optimizer_params

SGD = L(torch.optim.SGD)(
    params=L(get_default_optimizer_params)(
        # model is set by the training script
        base_lr="${..lr}",
        weight_decay="${..weight_decay}",
        weight_decay_norm=0.0,
    ),
    lr=0.02,
    momentum=0.9,
    weight_decay=1e-4,
)

AdamW = L(torch.optim.AdamW)(
    params=L(get_default_optimizer_params)(
        base_lr="${..lr}",
        weight_decay="${..weight_decay}",
        weight_decay_norm=0.0,
    ),
    lr=1e-4,
    betas=(0.9, 0.999),
    weight_decay=0.1,
)
