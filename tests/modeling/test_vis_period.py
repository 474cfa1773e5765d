"""VIS_PERIOD: GeneralizedRCNN puts GT boxes beside its best proposals into the event storage, and the
TensorBoard writer writes that image once."""
import os

import numpy as np
import pytest
import torch

from seg_research.config import get_cfg
from seg_research.modeling import build_model
from seg_research.structures import Boxes, Instances
from seg_research.utils.events import EventStorage, TensorboardXWriter

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TITLE = "Left: GT bounding boxes;  Right: Predicted proposals"


def _model(vis_period):
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO, "configs", "Shapes", "mask_rcnn_R_18_FPN_instant_test.yaml"))
    cfg.merge_from_list(["VIS_PERIOD", vis_period, "MODEL.MASK_ON", False])
    torch.manual_seed(0)
    return build_model(cfg).train()


def _inputs():
    image = torch.zeros(3, 64, 80, dtype=torch.uint8)  # black, BGR
    gt = Instances((64, 80), gt_boxes=Boxes(torch.tensor([[10.0, 10.0, 30.0, 40.0]])), gt_classes=torch.tensor([1]))
    return [{"image": image, "instances": gt}, {"image": image.clone(), "instances": gt}]


def test_vis_period_puts_gt_and_proposals_side_by_side_every_period(tmp_path):
    model = _model(vis_period=2)
    with EventStorage(start_iter=0) as storage:
        for _ in range(3):  # iterations 0, 1, 2: images at 0 and 2
            model(_inputs())
            storage.step()
        images = storage.vis_data
        assert [(name, it) for name, _, it in images] == [(TITLE, 0), (TITLE, 2)]
        image = images[0][1].numpy()
        assert image.shape == (3, 64, 160) and image.dtype == np.uint8
        left, right = image[:, :, :80], image[:, :, 80:]
        # the GT box is drawn on the left only at its outline; nothing outside boxes is painted
        assert left[:, 10:41, 10:31].any() and not left[:, 50:, 50:].any()
        assert right.any()  # proposals drawn
        writer = TensorboardXWriter(str(tmp_path))
        writer.write()
        writer.close()
        assert storage.vis_data == []  # written once, then dropped
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    events.Reload()
    assert [e.step for e in events.Images(TITLE)] == [0, 2]
    assert (events.Images(TITLE)[0].width, events.Images(TITLE)[0].height) == (160, 64)


def test_vis_period_zero_puts_nothing():
    model = _model(vis_period=0)
    with EventStorage() as storage:
        model(_inputs())
        assert storage.vis_data == []


def test_put_image_wants_rgb_chw():
    with EventStorage() as storage:
        with pytest.raises(ValueError, match=r"\(3, H, W\)"):
            storage.put_image("x", torch.zeros(64, 64, 3))
