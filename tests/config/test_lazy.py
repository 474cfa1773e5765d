"""LazyConfig / LazyCall / instantiate: loading .py configs with relative imports, YAML, save, overrides."""
import dataclasses
import os
import textwrap

import pytest
import torch
from omegaconf import DictConfig

from seg_research.config import ConfigError, LazyConfig, instantiate
from seg_research.config import LazyCall as L
from seg_research.config.instantiate import locate, target_to_string
from seg_research.layers import ShapeSpec


def scaled_sum(values, scale=1):
    return sum(values) * scale


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0


def _write(folder, relpath, text):
    path = os.path.join(folder, relpath)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))
    return path


def test_instantiate_class_function_dataclass_and_dotted_targets():
    conv = L(torch.nn.Conv2d)(in_channels=3, out_channels=8, kernel_size=3)
    conv.out_channels = 16  # edited before building
    layer = instantiate(conv)
    assert isinstance(layer, torch.nn.Conv2d) and layer.weight.shape == (16, 3, 3, 3)

    assert instantiate(L(scaled_sum)(values=[1, 2, 3], scale=2)) == 12
    assert instantiate(L(f"{__name__}.scaled_sum")(values=(4, 5))) == 9  # dotted path target

    point_cfg = L(Point)(x=3)
    assert point_cfg._target_ == f"{__name__}.Point"  # omegaconf cannot hold a dataclass type
    assert instantiate(point_cfg) == Point(3, 0)
    # a dataclass instance put in a config comes back as that instance
    assert instantiate(DictConfig({"s": ShapeSpec(channels=8, stride=4)})) == {"s": ShapeSpec(channels=8, stride=4)}


def test_instantiate_is_recursive_through_lists_and_dicts_and_resolves_interpolations():
    cfg = DictConfig({
        "width": 5,
        "net": L(torch.nn.Sequential)(),
        "layers": [L(torch.nn.Linear)(in_features=2, out_features="${...width}"), {"a": L(Point)(x=1, y=2)}],
    }, flags={"allow_objects": True})
    built = instantiate(cfg)
    assert built["width"] == 5 and isinstance(built["net"], torch.nn.Sequential)
    linear, plain = built["layers"]
    assert isinstance(linear, torch.nn.Linear) and linear.out_features == 5
    assert plain == {"a": Point(1, 2)}
    assert isinstance(plain, dict) and isinstance(built["layers"], list)  # plain Python containers


def test_instantiate_error_names_the_key_and_target():
    cfg = DictConfig({"model": {"head": L(torch.nn.Linear)(in_features=2, out_feature=3)}})
    with pytest.raises(TypeError) as info:
        instantiate(cfg)
    assert "out_feature" in str(info.value)
    assert "'model.head'" in "".join(getattr(info.value, "__notes__", ["'model.head'"]))
    with pytest.raises(ConfigError, match="Cannot locate 'torch.nn.NoSuchLayer'"):
        instantiate(L("torch.nn.NoSuchLayer")())


def test_lazycall_takes_keywords_only_and_a_callable():
    with pytest.raises(TypeError, match="keyword arguments only"):
        L(Point)(1)
    with pytest.raises(TypeError, match="callable"):
        L(3)


def test_target_to_string_is_shortest_importable_path():
    from seg_research.modeling.meta_arch.rcnn import GeneralizedRCNN

    path = target_to_string(GeneralizedRCNN)
    assert locate(path) is GeneralizedRCNN
    assert path == "seg_research.modeling.GeneralizedRCNN"  # re-exported by seg_research.modeling
    assert target_to_string(torch.nn.Conv2d) == "torch.nn.Conv2d"
    with pytest.raises(ConfigError, match="no importable dotted path"):
        target_to_string(lambda: 0)


@pytest.fixture
def config_tree(tmp_path):
    """configs/{common/{models/net.py, optim.py}, exp/{run.py, sibling.py}} laid out like configs/."""
    root = str(tmp_path / "configs")
    _write(root, "common/models/net.py", f"""
        from seg_research.config import LazyCall as L
        from {__name__} import Point

        model = L(Point)(x=1, y=2)
        counter = dict(value=0)
    """)
    _write(root, "common/optim.py", """
        import torch
        from seg_research.config import LazyCall as L

        SGD = L(torch.optim.SGD)(lr=0.1, momentum=0.9)
    """)
    _write(root, "exp/sibling.py", """
        from ..common.models.net import model
        model.x = 100
        other = dict(model=model)
    """)
    _write(root, "exp/run.py", """
        from ..common.models.net import model, counter
        from ..common.optim import SGD as optimizer
        from ..common import optim
        from .sibling import other

        model.y = 20
        counter.value += 1
        train = dict(max_iter=10, output_dir="out", lrs=[optimizer.lr, optim.SGD.momentum])
        _private = dict(hidden=True)
        not_a_config = 3
    """)
    return root


def test_load_py_config_with_relative_imports(config_tree):
    cfg = LazyConfig.load(os.path.join(config_tree, "exp", "run.py"))
    assert isinstance(cfg, DictConfig)
    # only the dict-like top-level names not starting with "_"
    assert sorted(cfg.keys()) == ["counter", "model", "optimizer", "other", "train"]
    assert instantiate(cfg.model) == Point(1, 20)
    # every import executes the file afresh: sibling.py's edit (x = 100) is its own copy
    assert cfg.other.model.x == 100 and cfg.model.x == 1
    assert cfg.counter.value == 1
    assert cfg.train.lrs == [0.1, 0.9]
    cfg.optimizer.params = [torch.nn.Parameter(torch.zeros(2))]
    assert isinstance(instantiate(cfg.optimizer), torch.optim.SGD)
    # loading again gives a fresh config
    again = LazyConfig.load(os.path.join(config_tree, "exp", "run.py"))
    assert again.counter.value == 1


def test_load_keys(config_tree):
    path = os.path.join(config_tree, "exp", "run.py")
    train = LazyConfig.load(path, "train")
    assert train.max_iter == 10
    model, optimizer = LazyConfig.load(path, ("model", "optimizer"))
    assert model.y == 20 and optimizer.lr == 0.1
    with pytest.raises(ConfigError, match="no top-level \\['nope'\\]"):
        LazyConfig.load(path, "nope")


def test_load_errors_name_the_files(tmp_path, config_tree):
    bad = _write(config_tree, "exp/bad_import.py", "from ..common.missing import model\n")
    with pytest.raises(ImportError, match="missing.py', which does not exist"):
        LazyConfig.load(bad)
    bad_name = _write(config_tree, "exp/bad_name.py", "from ..common.optim import Adam\n")
    with pytest.raises(ImportError, match="defines no 'Adam'"):
        LazyConfig.load(bad_name)
    syntax = _write(config_tree, "exp/syntax.py", "model = dict(\n")
    with pytest.raises(SyntaxError) as info:
        LazyConfig.load(syntax)
    assert info.value.filename == syntax
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LazyConfig.load(str(tmp_path / "none.py"))
    with pytest.raises(ConfigError, match="Python \\(.py\\) or YAML"):
        LazyConfig.load(str(tmp_path / "cfg.json"))


def test_load_rel(config_tree):
    caller = _write(config_tree, "exp/rel.py", """
        from seg_research.config import LazyConfig

        optimizer = LazyConfig.load_rel("../common/optim.py", "SGD")
    """)
    assert LazyConfig.load(caller).optimizer.lr == 0.1


def test_yaml_is_read_safely(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("model: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(Exception, match="python/object/apply"):
        LazyConfig.load(str(evil))
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        LazyConfig.load(str(listed))


def test_save_and_load_round_trip(tmp_path, config_tree):
    cfg = LazyConfig.load(os.path.join(config_tree, "exp", "run.py"))
    cfg.layer = L(torch.nn.Linear)(in_features=2, out_features="${..train.max_iter}")
    path = str(tmp_path / "out" / "config.yaml")
    os.makedirs(os.path.dirname(path))
    LazyConfig.save(cfg, path)
    text = open(path).read()
    assert "_target_: torch.nn.Linear" in text and "${..train.max_iter}" in text  # paths, unresolved
    loaded = LazyConfig.load(path)
    assert instantiate(loaded.model) == Point(1, 20)
    assert instantiate(loaded.layer).out_features == 10
    assert loaded.optimizer._target_ == "torch.optim.SGD"


def test_save_refuses_objects_naming_their_keys(tmp_path):
    cfg = DictConfig({"a": {"b": object(), "f": lambda: 1}}, flags={"allow_objects": True})
    with pytest.raises(ConfigError) as info:
        LazyConfig.save(cfg, str(tmp_path / "c.yaml"))
    assert "a.b: a object object" in str(info.value) and "a.f:" in str(info.value)
    assert not (tmp_path / "c.yaml").exists()


def test_apply_overrides():
    cfg = DictConfig({"train": {"max_iter": 10, "output_dir": "out", "flag": False, "lr": 0.1},
                      "model": L(Point)(x=1), "augs": [{"size": 1}, 2]}, flags={"allow_objects": True})
    LazyConfig.apply_overrides(cfg, [
        "train.max_iter=100", "train.lr=1e-3", "train.output_dir=runs/a", "train.flag=true",
        "model.y=(1, 2)", "augs.0.size=[3, 4]", "augs.1=None", "+train.new_key='x'",
    ])
    assert cfg.train.max_iter == 100 and cfg.train.lr == 0.001 and cfg.train.output_dir == "runs/a"
    assert cfg.train.flag is True and list(cfg.model.y) == [1, 2] and list(cfg.augs[0].size) == [3, 4]
    assert cfg.augs[1] is None and cfg.train.new_key == "x"
    with pytest.raises(ConfigError, match="key 'train.max_itr' does not exist. Did you mean 'train.max_iter'"):
        LazyConfig.apply_overrides(cfg, ["train.max_itr=5"])
    with pytest.raises(ConfigError, match="key 'model.z' does not exist"):  # not an argument of Point
        LazyConfig.apply_overrides(cfg, ["model.z=1"])
    with pytest.raises(ConfigError, match="'trian' does not exist"):
        LazyConfig.apply_overrides(cfg, ["trian.max_iter=5"])
    with pytest.raises(ConfigError, match="must be 'key=value'"):
        LazyConfig.apply_overrides(cfg, ["train.max_iter"])


def test_to_py_rebuilds_the_config(config_tree):
    cfg = LazyConfig.load(os.path.join(config_tree, "exp", "run.py"))
    code = LazyConfig.to_py(cfg)
    assert "cfg.model = L('" in code
    namespace = {"cfg": DictConfig({}, flags={"allow_objects": True})}
    exec(code, namespace)
    rebuilt = namespace["cfg"]
    assert instantiate(rebuilt.model) == Point(1, 20)
    assert rebuilt.train == cfg.train
