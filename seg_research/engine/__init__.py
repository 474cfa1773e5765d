from .defaults import DefaultTrainer, create_ddp_model, default_argument_parser, default_setup, default_writers
from .launch import DEFAULT_TIMEOUT, launch
from .predictor import DefaultPredictor
from .train_loop import AMPTrainer, HookBase, SimpleTrainer, TrainerBase
from .train_net import launch_train_net, setup_cfg, train_net_main

__all__ = [
    "DefaultTrainer", "DefaultPredictor", "default_argument_parser", "default_setup", "default_writers", "launch",
    "DEFAULT_TIMEOUT", "create_ddp_model", "AMPTrainer", "HookBase", "SimpleTrainer", "TrainerBase", "launch_train_net", "setup_cfg", "train_net_main",
]
