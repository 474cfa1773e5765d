import pytest

from seg_research.data import DatasetCatalog, DatasetNotRegisteredError, Metadata, MetadataCatalog


@pytest.fixture
def name():
    n = "test_catalog_ds"
    yield n
    DatasetCatalog.pop(n, None)
    MetadataCatalog.pop(n, None)


def test_register_is_lazy(name):
    calls = []

    def load():
        calls.append(1)
        return [{"file_name": "a.png", "image_id": 0, "height": 2, "width": 3}]

    DatasetCatalog.register(name, load)
    assert calls == []
    assert DatasetCatalog.get(name)[0]["file_name"] == "a.png"
    assert DatasetCatalog.get(name)[0]["width"] == 3
    assert calls == [1, 1]
    assert name in DatasetCatalog.list()


def test_unknown_name_lists_registered(name):
    DatasetCatalog.register(name, lambda: [])
    with pytest.raises(DatasetNotRegisteredError) as e:
        DatasetCatalog.get("no_such_dataset")
    assert "no_such_dataset" in str(e.value) and name in str(e.value)
    assert isinstance(e.value, KeyError)


def test_non_callable_rejected(name):
    with pytest.raises(TypeError, match="callable"):
        DatasetCatalog.register(name, [{"file_name": "x"}])


def test_double_registration_rejected(name):
    DatasetCatalog.register(name, lambda: [])
    with pytest.raises(ValueError, match="already registered"):
        DatasetCatalog.register(name, lambda: [])


def test_metadata_attributes_and_conflicts(name):
    meta = MetadataCatalog.get(name)
    meta.thing_classes = ["a", "b"]
    assert MetadataCatalog.get(name).thing_classes == ["a", "b"]
    meta.set(thing_classes=["a", "b"], ignore_label=255)  # same value: fine
    assert meta.ignore_label == 255
    with pytest.raises(ValueError, match="thing_classes"):
        meta.thing_classes = ["c"]
    with pytest.raises(AttributeError, match="stuff_classes"):
        _ = meta.stuff_classes
    assert meta.get("stuff_classes", "dflt") == "dflt"
    assert isinstance(meta, Metadata) and meta.name == name
