from .defaults import DefaultTrainer, default_argument_parser, default_setup, default_writers
from .launch import launch
from .predictor import DefaultPredictor
from .train_loop import HookBase, SimpleTrainer, TrainerBase
from .train_net import launch_train_net, setup_cfg, train_net_main

__all__ = [
    "DefaultTrainer", "DefaultPredictor", "default_argument_parser", "default_setup", "default_writers", "launch",
    "HookBase", "SimpleTrainer", "TrainerBase", "launch_train_net", "setup_cfg", "train_net_main",
]
