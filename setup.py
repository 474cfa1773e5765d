"""Install seg_research: ``pip install .`` (ranges here; exact pins in requirements.lock)."""
import os
import shutil

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py


class BuildPyWithConfigs(build_py):
    """Also copy the repository's ``configs/`` (YAML) into ``seg_research/model_zoo/configs`` of
    the build, so ``seg_research.model_zoo.get_config_file`` finds them in an installed wheel."""

    def run(self) -> None:
        super().run()
        target = os.path.join(self.build_lib, "seg_research", "model_zoo", "configs")
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree("configs", target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(
    name="seg_research",
    version="0.1.0",
    description="Instance, semantic and panoptic segmentation research framework with detectron2's conventions",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_namespace_packages(include=["seg_research", "seg_research.*"], exclude=["*.__pycache__"]),
    cmdclass={"build_py": BuildPyWithConfigs},
    include_package_data=True,
    package_data={"seg_research": ["data/datasets/splits/*.json"]},
    install_requires=[
        "torch>=2.4",
        "torchvision>=0.19",
        "fvcore>=0.1.5",
        "iopath>=0.1.9",
        "pycocotools>=2.0.7",
        "hotcoco>=1.3",  # COCOEvaluator's fast backend (pycocotools' numbers); pycocotools stays the reference
        "opencv-python-headless>=4.8",
        "Pillow>=10",
        "numpy>=1.24",
        "PyYAML>=6",
        "omegaconf>=2.1",  # LazyConfig (.py configs, detectron2's library for them)
        "tensorboard>=2.14",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "cityscapesscripts>=2.2",  # the Cityscapes label table (trainIds, colors)
    ],
    extras_require={"test": ["pytest>=7", "hypothesis>=6"], "lint": ["ruff>=0.17"],
                    "sam": ["segment-anything>=1.0"],
                    # seg_research.export and tools/deploy: torch.onnx's exporter (onnx, onnxscript) and the runtime
                    "export": ["onnx>=1.17", "onnxscript>=0.5", "onnxruntime>=1.20"]},
)
