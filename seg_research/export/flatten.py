"""Flatten the models' rich inputs and outputs (lists of dicts, ``Instances``, ``Boxes``) to tuples
of tensors and rebuild them: what ``torch.jit.trace`` and ``torch.onnx.export`` need.

A :class:`Schema` is returned by :func:`flatten_to_tuple` beside the flat tuple; calling it on a
tuple of the same length and meaning rebuilds the structure. :meth:`Schema.names` gives each leaf
a dotted name (``0.instances.pred_boxes``), used as the ONNX input and output names.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..structures import Boxes, Instances

__all__ = ["Schema", "flatten_to_tuple", "TracingAdapter"]


class Schema:
    """How a flattened tuple maps back to the original structure (see :func:`flatten_to_tuple`)."""

    def __call__(self, values: Sequence[Any]) -> Any:
        raise NotImplementedError

    def names(self, prefix: str = "") -> List[str]:
        """A dotted name for each leaf of the flat tuple, in order."""
        raise NotImplementedError


def _join(prefix: str, key: Any) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


@dataclass(frozen=True)
class LeafSchema(Schema):
    """A single value (a tensor, or anything that is not a container known here)."""

    def __call__(self, values: Sequence[Any]) -> Any:
        return values[0]

    def names(self, prefix: str = "") -> List[str]:
        return [prefix or "output"]


@dataclass(frozen=True)
class SequenceSchema(Schema):
    """A list or tuple: one schema per item and how many flat values each item took."""

    kind: type
    schemas: Tuple[Schema, ...]
    sizes: Tuple[int, ...]

    def __call__(self, values: Sequence[Any]) -> Any:
        items, start = [], 0
        for schema, size in zip(self.schemas, self.sizes, strict=True):
            items.append(schema(values[start:start + size]))
            start += size
        return self.kind(items)

    def names(self, prefix: str = "") -> List[str]:
        return [name for i, schema in enumerate(self.schemas) for name in schema.names(_join(prefix, i))]


@dataclass(frozen=True)
class DictSchema(Schema):
    """A dict with string keys, flattened in sorted key order."""

    keys: Tuple[str, ...]
    items: SequenceSchema

    def __call__(self, values: Sequence[Any]) -> Dict[str, Any]:
        return dict(zip(self.keys, self.items(values), strict=True))

    def names(self, prefix: str = "") -> List[str]:
        return [name for key, schema in zip(self.keys, self.items.schemas, strict=True)
                for name in schema.names(_join(prefix, key))]


@dataclass(frozen=True)
class InstancesSchema(Schema):
    """``Instances``: its fields as a :class:`DictSchema`; the image size is kept in the schema
    (a traced graph cannot carry it as Python ints), so a rebuilt Instances has the traced size."""

    image_size: Tuple[int, int]
    fields: DictSchema

    def __call__(self, values: Sequence[Any]) -> Instances:
        return Instances(self.image_size, **self.fields(values))

    def names(self, prefix: str = "") -> List[str]:
        return self.fields.names(prefix)


@dataclass(frozen=True)
class BoxesSchema(Schema):
    """``Boxes``: its (N, 4) tensor."""

    def __call__(self, values: Sequence[Any]) -> Boxes:
        return Boxes(values[0])

    def names(self, prefix: str = "") -> List[str]:
        return [prefix or "boxes"]


def flatten_to_tuple(obj: Any) -> Tuple[Tuple[Any, ...], Schema]:
    """``obj`` (nested lists, tuples, string-keyed dicts, ``Instances``, ``Boxes`` and tensors) as a
    flat tuple of its leaves, and the :class:`Schema` that rebuilds it: ``schema(flat) == obj``.

    Dicts are flattened in sorted key order; ``Instances`` by field name. Leaves that are not
    tensors (ints, strings) are kept as they are: :class:`TracingAdapter` refuses them.
    """
    if isinstance(obj, (list, tuple)):
        flat, schemas, sizes = [], [], []
        for item in obj:
            values, schema = flatten_to_tuple(item)
            flat.extend(values)
            schemas.append(schema)
            sizes.append(len(values))
        return tuple(flat), SequenceSchema(type(obj), tuple(schemas), tuple(sizes))
    if isinstance(obj, dict):
        keys = sorted(obj)
        if not all(isinstance(k, str) for k in keys):
            raise TypeError(f"flatten_to_tuple flattens dicts with string keys only, got keys {list(obj)}.")
        values, items = flatten_to_tuple([obj[k] for k in keys])
        return values, DictSchema(tuple(keys), items)
    if isinstance(obj, Instances):
        values, fields = flatten_to_tuple(obj.get_fields())
        return values, InstancesSchema(tuple(obj.image_size), fields)
    if isinstance(obj, Boxes):
        return (obj.tensor,), BoxesSchema()
    return (obj,), LeafSchema()


class TracingAdapter(nn.Module):
    """A module with tensors-only inputs and outputs around a model with rich ones (detectron2's
    contract): ``torch.jit.trace`` and ``torch.onnx.export`` can then record it::

        adapter = TracingAdapter(model, [{"image": image}], inference_func)
        traced = torch.jit.trace(adapter, adapter.flattened_inputs)
        outputs = adapter.outputs_schema(traced(*adapter.flattened_inputs))  # the rich outputs again

    Attributes:
        flattened_inputs: the tensors of ``inputs``, in :func:`flatten_to_tuple` order.
        inputs_schema: rebuilds ``inputs`` from such a tuple.
        outputs_schema: rebuilds the outputs; set by the first call of :meth:`forward`.
    """

    def __init__(self, model: nn.Module, inputs: Any, inference_func: Optional[Callable[..., Any]] = None) -> None:
        """
        Args:
            model: the model (a DistributedDataParallel / DataParallel wrapper is unwrapped).
            inputs: one argument of the model, or a tuple of its arguments; flattened, only tensors.
            inference_func: ``(model, *inputs) -> outputs``; default ``model(*inputs)``.

        Raises:
            ValueError: ``inputs`` hold something other than tensors (say, ``height`` ints: leave
                them out, the exported graph works at the size of the image it gets).
        """
        super().__init__()
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        self.model = model
        self.inputs = inputs if isinstance(inputs, tuple) else (inputs,)
        self.inference_func = inference_func
        self.flattened_inputs, self.inputs_schema = flatten_to_tuple(self.inputs)
        bad = [name for name, value in zip(self.inputs_schema.names(), self.flattened_inputs, strict=True)
               if not isinstance(value, torch.Tensor)]
        if bad:
            raise ValueError(f"TracingAdapter: inputs {bad} are not tensors; a traced graph takes tensors only. "
                             "Pass [{'image': tensor}] (the graph works at the size of the image it gets).")
        self.outputs_schema: Optional[Schema] = None

    def forward(self, *args: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        inputs = self.inputs_schema(args)
        with torch.no_grad():
            outputs = self.inference_func(self.model, *inputs) if self.inference_func else self.model(*inputs)
        flat, schema = flatten_to_tuple(outputs)
        bad = [name for name, value in zip(schema.names(), flat, strict=True) if not isinstance(value, torch.Tensor)]
        if bad:
            raise ValueError(f"TracingAdapter: outputs {bad} are not tensors, so they cannot be traced.")
        if self.outputs_schema is None:
            self.outputs_schema = schema
        elif self.outputs_schema != schema:
            raise ValueError("TracingAdapter: the model returned differently structured outputs on two calls; "
                             "a traced graph needs one structure.")
        return flat
