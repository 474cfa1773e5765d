"""Multi-scale deformable attention in plain PyTorch, at upstream's import paths
(``ops.modules.MSDeformAttn``, ``ops.functions.ms_deform_attn_core_pytorch``): nothing to compile."""
from .functions import ms_deform_attn, ms_deform_attn_core_pytorch
from .modules import MSDeformAttn

__all__ = ["MSDeformAttn", "ms_deform_attn", "ms_deform_attn_core_pytorch"]
