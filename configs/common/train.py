# Common training settings of tools/lazyconfig_train_net.py (detectron2's `train` dict).
train = dict(
    output_dir="./output",
    init_checkpoint="",  # weights loaded before training (path, URL or detectron2://); "" = from scratch
    max_iter=90000,
    amp=dict(enabled=False),  # AMPTrainer (CUDA only) instead of SimpleTrainer
    ddp=dict(  # DistributedDataParallel arguments, used with more than one process
        broadcast_buffers=False,
        find_unused_parameters=False,
    ),
    clip_gradients=dict(enabled=False, clip_type="value", clip_value=1.0, norm_type=2.0),  # SOLVER.CLIP_GRADIENTS
    checkpointer=dict(period=5000, max_to_keep=100),  # PeriodicCheckpointer arguments
    eval_period=5000,  # 0: evaluate only after training
    log_period=20,
    seed=-1,  # < 0: a random seed
    device="cuda",
)
