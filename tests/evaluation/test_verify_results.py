"""evaluation.verify_results: cfg.TEST.EXPECTED_RESULTS checked as detectron2 does."""
import math

import pytest

from seg_research.config import get_cfg
from seg_research.evaluation import verify_results
from seg_research.evaluation.testing import flatten_results_dict

RESULTS = {"bbox": {"AP": 40.0, "AP50": 60.0}, "segm": {"AP": 35.5, "AP50": math.nan}}


def _cfg(expected):
    cfg = get_cfg()
    cfg.TEST.EXPECTED_RESULTS = expected
    return cfg


def test_passes_within_tolerance_and_without_expectations():
    assert get_cfg().TEST.EXPECTED_RESULTS == []
    assert verify_results(get_cfg(), RESULTS) is True
    assert verify_results(_cfg([["bbox", "AP", 40.1, 0.2], ["segm", "AP", 35.0, 0.5]]), RESULTS) is True


@pytest.mark.parametrize("entry", [["bbox", "AP", 40.3, 0.2],   # outside the tolerance
                                   ["segm", "AP50", 50.0, 100],  # not finite
                                   ["segm", "APl", 1.0, 100],    # missing metric
                                   ["panoptic_seg", "PQ", 1.0, 100]])  # missing task
def test_fails_with_exit_status_1(entry, caplog):
    with pytest.raises(SystemExit) as e:
        verify_results(_cfg([["bbox", "AP50", 60.0, 0.0], entry]), RESULTS)
    assert e.value.code == 1
    assert f"{entry[0]}/{entry[1]}" in caplog.text and "bbox/AP50" not in caplog.text.split("Expected")[0]


def test_malformed_entry_and_flatten():
    with pytest.raises(ValueError, match="task, metric, expected, tolerance"):
        verify_results(_cfg([["bbox", "AP", 40.0]]), RESULTS)
    assert flatten_results_dict({"bbox": {"AP": 1.0}, "x": 2}) == {"bbox/AP": 1.0, "x": 2}
