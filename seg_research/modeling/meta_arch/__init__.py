from .build import META_ARCH_REGISTRY, build_model
from .tiny_semseg import TinySemSegNet

__all__ = ["META_ARCH_REGISTRY", "build_model", "TinySemSegNet"]
