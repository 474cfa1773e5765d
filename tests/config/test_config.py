
import dataclasses

import pytest
import yaml

from seg_research.config import ConfigError, configurable, get_cfg


def _write(path, text):
    path.write_text(text)
    return str(path)


def test_defaults_have_detectron2_names():
    cfg = get_cfg()
    for key in ("MODEL.META_ARCHITECTURE", "MODEL.WEIGHTS", "INPUT.MIN_SIZE_TRAIN", "DATASETS.TRAIN",
                "DATALOADER.NUM_WORKERS", "SOLVER.BASE_LR", "TEST.EVAL_PERIOD", "OUTPUT_DIR", "SEED", "VERSION"):
        node = cfg
        for part in key.split("."):
            node = node[part]
    assert cfg.VERSION == 2
    assert get_cfg() is not get_cfg()  # fresh copies


def test_base_inheritance_with_relative_paths(tmp_path):
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "Base.yaml", "SOLVER:\n  BASE_LR: 0.5\n  MAX_ITER: 10\nMODEL:\n  MASK_ON: True\n")
    child = _write(tmp_path / "sub" / "child.yaml", '_BASE_: "../Base.yaml"\nSOLVER:\n  MAX_ITER: 20\n')
    cfg = get_cfg()
    cfg.merge_from_file(child)
    assert cfg.SOLVER.BASE_LR == 0.5
    assert cfg.SOLVER.MAX_ITER == 20
    assert cfg.MODEL.MASK_ON is True


def test_command_line_overrides():
    cfg = get_cfg()
    cfg.merge_from_list(["SOLVER.BASE_LR", "0.02", "DATASETS.TRAIN", "('a', 'b')", "OUTPUT_DIR", "/tmp/x"])
    assert cfg.SOLVER.BASE_LR == 0.02
    assert cfg.DATASETS.TRAIN == ("a", "b")
    assert cfg.OUTPUT_DIR == "/tmp/x"


def test_unknown_key_in_file_names_key_and_closest(tmp_path):
    f = _write(tmp_path / "bad.yaml", "SOLVER:\n  BASE_LRR: 0.1\n")
    with pytest.raises(ConfigError) as e:
        get_cfg().merge_from_file(f)
    msg = str(e.value)
    assert "SOLVER.BASE_LRR" in msg and "Did you mean 'SOLVER.BASE_LR'" in msg and "bad.yaml" in msg


def test_unknown_key_on_command_line():
    with pytest.raises(ConfigError) as e:
        get_cfg().merge_from_list(["MODEL.RESNET.DEPTH", "18"])
    assert "MODEL.RESNET.DEPTH" in str(e.value) and "MODEL.RESNETS.DEPTH" in str(e.value)
    with pytest.raises(KeyError):  # still a KeyError for yacs-style handlers
        get_cfg().merge_from_list(["FOO", "1"])


@pytest.mark.parametrize("text", ['DATASETS:\n  TRAIN: ("coco_train")\n', "DATASETS:\n  TEST: coco_val\n"])
def test_dataset_names_as_string_fail_with_tuple_advice(tmp_path, text):
    f = _write(tmp_path / "s.yaml", text)
    with pytest.raises(ConfigError) as e:
        get_cfg().merge_from_file(f)
    assert "must be a tuple" in str(e.value) and ',)' in str(e.value)


def test_dataset_names_as_string_on_command_line():
    with pytest.raises(ConfigError, match="must be a tuple"):
        get_cfg().merge_from_list(["DATASETS.TRAIN", "coco_train"])


def test_odd_number_of_overrides():
    with pytest.raises(ConfigError, match="KEY VALUE pairs"):
        get_cfg().merge_from_list(["SOLVER.BASE_LR"])


def test_wrong_type_names_source(tmp_path):
    f = _write(tmp_path / "t.yaml", "SOLVER:\n  MAX_ITER: 'many'\n")
    with pytest.raises(ConfigError, match="t.yaml"):
        get_cfg().merge_from_file(f)


def test_yaml_is_loaded_safely(tmp_path):
    f = _write(tmp_path / "evil.yaml", "OUTPUT_DIR: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(Exception) as e:
        get_cfg().merge_from_file(f)
    assert "python/object" in str(e.value)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        get_cfg().merge_from_file("nope.yaml")


def test_dump_roundtrip(tmp_path):
    cfg = get_cfg()
    cfg.merge_from_list(["SOLVER.MAX_ITER", "7", "DATASETS.TRAIN", "('x',)"])
    path = tmp_path / "config.yaml"
    path.write_text(cfg.dump())
    cfg2 = get_cfg()
    cfg2.merge_from_file(str(path))
    # As in detectron2, a tuple of tuples (ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS) comes back as a
    # tuple of lists; every value is the same.
    assert yaml.safe_load(cfg2.dump()) == yaml.safe_load(cfg.dump())
    assert cfg2.SOLVER.MAX_ITER == 7 and cfg2.DATASETS.TRAIN == ("x",)


class _Module:
    @configurable
    def __init__(self, *, depth: int, width: int = 4):
        self.depth, self.width = depth, width

    @classmethod
    def from_config(cls, cfg, width=8):
        return {"depth": cfg.MODEL.RESNETS.DEPTH, "width": width}


def test_configurable_class_with_cfg_or_kwargs():
    cfg = get_cfg()
    m = _Module(cfg)
    assert (m.depth, m.width) == (50, 8)
    m = _Module(cfg, width=3)
    assert (m.depth, m.width) == (50, 3)
    m = _Module(depth=18)
    assert (m.depth, m.width) == (18, 4)


def test_configurable_function():
    def from_cfg(cfg, scale=1):
        return {"n": cfg.SOLVER.MAX_ITER * scale}

    @configurable(from_config=from_cfg)
    def f(*, n):
        return n

    cfg = get_cfg()
    assert f(cfg) == 40000 and f(cfg, scale=2) == 80000 and f(n=3) == 3


@dataclasses.dataclass
class _Inner:
    x: int


@dataclasses.dataclass
class _Outer:
    inner: _Inner
    items: list
    name: str = "o"


def test_global_cfg_and_detectron2_paths():
    from seg_research.config import global_cfg, set_global_cfg
    from seg_research.config.config import configurable as configurable_at_d2_path
    from seg_research.config.config import get_cfg as get_cfg_at_d2_path

    assert configurable_at_d2_path is configurable and get_cfg_at_d2_path is get_cfg
    cfg = get_cfg()
    cfg.SOLVER.MAX_ITER = 123
    set_global_cfg(cfg)
    from seg_research.config import global_cfg as again

    assert again is global_cfg and global_cfg.SOLVER.MAX_ITER == 123
    set_global_cfg(get_cfg())
    assert global_cfg.SOLVER.MAX_ITER == 40000


def test_dump_dataclass_round_trips_through_instantiate():
    from seg_research.config import instantiate
    from seg_research.config.instantiate import dump_dataclass

    dumped = dump_dataclass(_Outer(inner=_Inner(3), items=[_Inner(4)]))
    assert dumped == {"_target_": f"{__name__}._Outer", "inner": {"_target_": f"{__name__}._Inner", "x": 3},
                      "items": [{"_target_": f"{__name__}._Inner", "x": 4}], "name": "o"}
    assert dataclasses.asdict(instantiate(dumped)) == {"inner": {"x": 3}, "items": [{"x": 4}], "name": "o"}
    with pytest.raises(TypeError, match="dataclass instance"):
        dump_dataclass(_Inner)
