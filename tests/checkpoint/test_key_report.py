"""checkpoint.key_report: unmatched keys grouped per module, and aliases of loaded tensors not reported missing."""
from torch import nn

from seg_research.checkpoint.key_report import drop_loaded_aliases, format_grouped_keys, group_keys_by_module


def test_keys_group_by_module_path():
    assert group_keys_by_module(["a.b.weight", "a.b.bias", "c.weight", "top"]) == {
        "a.b": ["weight", "bias"], "c": ["weight"], "top": []}


def test_format_writes_one_sorted_line_per_module():
    text = format_grouped_keys(["z.weight", "a.b.weight", "a.b.bias", "top"])
    assert text.splitlines() == ["  a.b.{bias, weight}", "  top", "  z.weight"]


class _Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(2, 2)
        self.alias = self.head  # one module, two state_dict names
        self.other = nn.Linear(2, 2)


def test_an_alias_of_a_loaded_tensor_is_not_missing():
    model = _Shared()
    # the checkpoint had head.* but not alias.* (the same tensors) nor other.*
    missing = ["alias.weight", "alias.bias", "other.weight", "other.bias"]
    assert drop_loaded_aliases(model, missing) == ["other.weight", "other.bias"]


def test_both_names_missing_stay_missing():
    model = _Shared()
    missing = ["head.weight", "alias.weight"]
    assert drop_loaded_aliases(model, missing) == ["head.weight", "alias.weight"]
