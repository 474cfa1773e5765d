# LR multipliers (fvcore ParamSchedulers over training progress in [0, 1]); the training script
# turns `lr_multiplier` into an LRMultiplier over train.max_iter iterations. The YAML twins are
# SOLVER.LR_SCHEDULER_NAME with SOLVER.WARMUP_ITERS / WARMUP_FACTOR.
from fvcore.common.param_scheduler import CosineParamScheduler, MultiStepParamScheduler

from seg_research.config import LazyCall as L
from seg_research.solver import WarmupParamScheduler


def cosine_with_warmup(warmup_iters, max_iter, end_value=0.0, warmup_factor=0.001):
    """WarmupCosineLR: a linear warmup over warmup_iters, then a cosine from 1 to end_value."""
    return L(WarmupParamScheduler)(
        scheduler=L(CosineParamScheduler)(start_value=1.0, end_value=end_value),
        warmup_length=warmup_iters / max_iter,
        warmup_factor=warmup_factor,
    )


def multi_step_with_warmup(steps, max_iter, gamma=0.1, warmup_iters=1000, warmup_factor=0.001):
    """WarmupMultiStepLR: a linear warmup, then the LR times gamma after each of steps."""
    return L(WarmupParamScheduler)(
        scheduler=L(MultiStepParamScheduler)(
            values=[gamma**k for k in range(len(steps) + 1)], milestones=list(steps), num_updates=max_iter
        ),
        warmup_length=warmup_iters / max_iter,
        warmup_factor=warmup_factor,
    )


# detectron2's COCO "1x" schedule: 90k iterations, LR / 10 at 60k and 80k
lr_multiplier_1x = multi_step_with_warmup(steps=(60000, 80000), max_iter=90000)
