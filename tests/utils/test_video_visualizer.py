"""VideoVisualizer: an instance keeps its colour while it moves; new ones get a new shade."""
import numpy as np
import torch

from seg_research.data.catalog import Metadata
from seg_research.structures import Boxes, Instances
from seg_research.utils.colormap import shade_color
from seg_research.utils.video_visualizer import VideoVisualizer

H, W, GRAY = 60, 90, 100
RED = (255, 0, 0)


def _frame_instances(boxes):
    masks = torch.zeros(len(boxes), H, W, dtype=torch.bool)
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        masks[k, y0:y1, x0:x1] = True
    return Instances((H, W), pred_boxes=Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)),
                     scores=torch.full((len(boxes),), 0.9), pred_classes=torch.zeros(len(boxes), dtype=torch.long),
                     pred_masks=masks)


def _fill(color):
    return tuple(int(np.round(GRAY * 0.5 + c * 0.5)) for c in color)


def test_colours_follow_instances_across_frames():
    video = VideoVisualizer(Metadata(name="video_test", thing_classes=["a"], thing_colors=[RED]))
    frame = np.full((H, W, 3), GRAY, dtype=np.uint8)
    first = video.draw_instance_predictions(frame, _frame_instances([(5, 20, 35, 50), (50, 20, 80, 50)])).get_image()
    c0, c1 = tuple(first[45, 10]), tuple(first[45, 55])
    assert (c0, c1) == (_fill(RED), _fill(shade_color(RED, 1)))
    # the instances move by 3 px and swap order in the predictions: each keeps its colour
    second = video.draw_instance_predictions(frame, _frame_instances([(53, 22, 83, 52), (8, 22, 38, 52)])).get_image()
    assert (tuple(second[45, 12]), tuple(second[45, 58])) == (c0, c1)
    # a third instance, overlapping neither: a new shade
    third = video.draw_instance_predictions(frame, _frame_instances([(8, 22, 38, 52), (45, 0, 88, 20)])).get_image()
    assert tuple(third[45, 12]) == c0 and tuple(third[12, 82]) == _fill(shade_color(RED, 2))


def test_semantic_and_panoptic_frames_draw_like_visualizer():
    video = VideoVisualizer(Metadata(name="video_test_sem", stuff_classes=["x", "y"], stuff_colors=[RED, RED]))
    frame = np.full((H, W, 3), GRAY, dtype=np.uint8)
    sem = np.zeros((H, W), dtype=np.int64)
    assert tuple(video.draw_sem_seg(frame, sem).get_image()[2, 2]) == tuple(
        int(np.round(GRAY * 0.2 + c * 0.8)) for c in RED)
    pan = np.ones((H, W), dtype=np.int64)
    out = video.draw_panoptic_seg_predictions(frame, pan, [{"id": 1, "category_id": 1, "isthing": False}])
    assert tuple(out.get_image()[2, 2]) == _fill(RED)
