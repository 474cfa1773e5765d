"""seg_research.model_zoo for Mask2Former's configs: upstream's names, the official checkpoint URLs of its
MODEL_ZOO.md (https://dl.fbaipublicfiles.com/maskformer/mask2former/...), the project's keys added by
``get_config``, and ``get(trained=True)`` reading an official-layout .pkl from the weights cache (no
network: the file is put where the download would go, as a user without network would)."""
import logging
import os
import pickle

import numpy as np
import pytest

from seg_research import model_zoo
from seg_research.checkpoint.download import cached_path_for_url

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
M2F_FOLDERS = ("coco/", "ade20k/", "cityscapes/", "mapillary-vistas/")


def test_every_mask2former_model_config_has_its_official_weights():
    shipped = {n[: -len(".yaml")] for n in model_zoo.list_configs() if n.startswith(M2F_FOLDERS)}
    models = {n for n in shipped if not os.path.basename(n).startswith("Base-")}
    assert len(models) == 47 and sorted(model_zoo.MASK2FORMER_ZOO_URLS) == sorted(models)
    for name, path in model_zoo.MASK2FORMER_ZOO_URLS.items():
        url = model_zoo.get_checkpoint_url(name + ".yaml")
        assert url == "https://dl.fbaipublicfiles.com/maskformer/mask2former/" + path
        task = name.split("/")[1].split("-")[0]  # panoptic / instance / semantic
        dataset = name.split("/")[0].replace("-", "_")
        stem = os.path.basename(name).replace("maskformer2_R50_bs16_300k", "maskformer_R50_bs16_300k")  # see below
        assert path.startswith(f"{dataset}/{task}/{stem}/model_final_"), name


def test_official_urls_by_config_name():
    assert model_zoo.get_checkpoint_url("coco/panoptic-segmentation/maskformer2_R50_bs16_50ep.yaml") == (
        "https://dl.fbaipublicfiles.com/maskformer/mask2former/coco/panoptic/maskformer2_R50_bs16_50ep/"
        "model_final_94dc52.pkl")
    assert model_zoo.get_checkpoint_url("ade20k/semantic-segmentation/swin/maskformer2_swin_large_IN21k_384_bs16_160k_res640") == (
        "https://dl.fbaipublicfiles.com/maskformer/mask2former/ade20k/semantic/"
        "maskformer2_swin_large_IN21k_384_bs16_160k_res640/model_final_6b4a3a.pkl")
    # MODEL_ZOO.md links these weights to maskformer_R50_bs16_300k.yaml, which upstream does not have
    assert model_zoo.get_checkpoint_url("mapillary-vistas/semantic-segmentation/maskformer2_R50_bs16_300k.yaml") == (
        "https://dl.fbaipublicfiles.com/maskformer/mask2former/mapillary_vistas/semantic/maskformer_R50_bs16_300k/"
        "model_final_6c66d0.pkl")
    # the detectron2 names are unchanged
    assert model_zoo.get_checkpoint_url("COCO-PanopticSegmentation/panoptic_fpn_R_50_3x").startswith(
        "https://dl.fbaipublicfiles.com/detectron2/COCO-PanopticSegmentation/")
    with pytest.raises(RuntimeError, match="No pretrained model is published for 'coco/panoptic-segmentation/"
                                           "Base-COCO-PanopticSegmentation.yaml'"):
        model_zoo.get_checkpoint_url("coco/panoptic-segmentation/Base-COCO-PanopticSegmentation.yaml")


def test_config_lookup_adds_the_project_keys():
    name = "cityscapes/instance-segmentation/swin/maskformer2_swin_tiny_bs16_90k.yaml"
    path = model_zoo.get_config_file(name)
    assert os.path.samefile(path, os.path.join(REPO, "configs", *name.split("/")))
    cfg = model_zoo.get_config(name)
    assert cfg.MODEL.META_ARCHITECTURE == "MaskFormer" and cfg.MODEL.BACKBONE.NAME == "D2SwinTransformer"
    assert cfg.MODEL.MASK_FORMER.TEST.INSTANCE_ON and cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES == 8
    assert cfg.MODEL.WEIGHTS == "swin_tiny_patch4_window7_224.pkl"
    assert cfg.INPUT.MIN_SIZE_TRAIN == (512, 614, 716, 819, 921, 1024, 1126, 1228, 1331, 1433, 1536, 1638, 1740,
                                        1843, 1945, 2048)
    trained = model_zoo.get_config("./" + name, trained=True)
    assert trained.MODEL.WEIGHTS == ("https://dl.fbaipublicfiles.com/maskformer/mask2former/cityscapes/instance/"
                                     "maskformer2_swin_tiny_bs16_90k/model_final_6a63f8.pkl")
    # detectron2's configs get no project keys
    assert "MASK_FORMER" not in model_zoo.get_config("Misc/semantic_R_50_FPN_1x.yaml").MODEL


def test_get_trained_loads_the_cached_official_checkpoint(tmp_path, monkeypatch, caplog):
    """``get(trained=True)`` reads the official .pkl from the weights cache: the zoo's layout (numpy
    arrays, the pixel decoder's weights directly under ``sem_seg_head.``)."""
    name = "coco/instance-segmentation/maskformer2_R50_bs16_50ep.yaml"
    monkeypatch.setenv("SEG_RESEARCH_CACHE", str(tmp_path))
    cached = cached_path_for_url(model_zoo.get_checkpoint_url(name))
    assert cached == str(tmp_path / "dl.fbaipublicfiles.com" / "maskformer" / "mask2former" / "coco" / "instance"
                         / "maskformer2_R50_bs16_50ep" / "model_final_3c8ec9.pkl")
    os.makedirs(os.path.dirname(cached))
    rng = np.random.default_rng(0)
    stem = rng.normal(size=(64, 3, 7, 7)).astype(np.float32)
    adapter = rng.normal(size=(256, 256, 1, 1)).astype(np.float32)
    class_embed = rng.normal(size=(81, 256)).astype(np.float32)
    with open(cached, "wb") as f:
        pickle.dump({"model": {"backbone.stem.conv1.weight": stem,
                               "sem_seg_head.adapter_1.weight": adapter,
                               "sem_seg_head.predictor.class_embed.weight": class_embed}}, f)
    with caplog.at_level(logging.INFO, logger="seg_research.checkpoint.checkpointer"):
        model = model_zoo.get(name, trained=True, device="cpu")
    assert type(model).__name__ == "MaskFormer" and model.training
    state = model.state_dict()
    np.testing.assert_array_equal(state["backbone.stem.conv1.weight"].numpy(), stem)
    np.testing.assert_array_equal(state["sem_seg_head.pixel_decoder.adapter_1.weight"].numpy(), adapter)
    np.testing.assert_array_equal(state["sem_seg_head.predictor.class_embed.weight"].numpy(), class_embed)
    assert f"Loaded 3 of {len(state)} model tensors" in caplog.text
