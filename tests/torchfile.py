"""Legacy (pre-1.6) PyTorch checkpoint files written without PyTorch, for tests of model.torch_checkpoint.

The layout is what `torch.save(..., _use_new_zipfile_serialization=False)` writes: pickles of the magic
number, the protocol version and the system info, then the state dict (tensors reduce to
`torch._utils._rebuild_tensor_v2`, storages are persistent ids naming `torch.FloatStorage` and the like),
then the list of storage keys, then each storage as an int64 element count and its raw little-endian data.
Pickle saves a class or function only by a name it can look up, so stand-in `torch` modules sit in
sys.modules while (and only while) a file is pickled.
"""

from __future__ import annotations

import io
import pickle
import struct
import sys
import types
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}

STORAGE_TYPES = {
    np.dtype("<f4"): "FloatStorage",
    np.dtype("<f8"): "DoubleStorage",
    np.dtype("<f2"): "HalfStorage",
    np.dtype("<i8"): "LongStorage",
    np.dtype("<i4"): "IntStorage",
    np.dtype("<i2"): "ShortStorage",
    np.dtype("i1"): "CharStorage",
    np.dtype("u1"): "ByteStorage",
    np.dtype("?"): "BoolStorage",
}


def _stand_in_class(name: str) -> type:
    return type(name, (), {"__module__": "torch", "__qualname__": name})


_TORCH = types.ModuleType("torch")
for _name in STORAGE_TYPES.values():
    setattr(_TORCH, _name, _stand_in_class(_name))
_TORCH_UTILS = types.ModuleType("torch._utils")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks):
    raise AssertionError("a stand-in for pickling only")


_rebuild_tensor_v2.__module__ = "torch._utils"
_TORCH_UTILS._rebuild_tensor_v2 = _rebuild_tensor_v2


@dataclass(frozen=True)
class Storage:
    """A flat tensor storage: `key` names it in the file, `data` is its 1-d contents."""

    key: str
    data: np.ndarray

    @property
    def storage_type(self) -> type:
        return getattr(_TORCH, STORAGE_TYPES[self.data.dtype.newbyteorder("<")])


@dataclass(frozen=True)
class Tensor:
    """A view into a storage, pickled the way torch pickles a tensor."""

    storage: Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def __reduce__(self):
        return _rebuild_tensor_v2, (self.storage, self.offset, self.shape, self.stride, False, OrderedDict())


def tensor(array, key: str) -> Tensor:
    """A contiguous tensor with its own storage holding `array`."""
    array = np.array(array, order="C")  # not ascontiguousarray: that turns a 0-d array into 1-d
    strides = tuple(s // array.itemsize for s in array.strides)
    return Tensor(Storage(key, array.reshape(-1)), 0, array.shape, strides)


class _CheckpointPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.storage_type, obj.key, "cpu", obj.data.size, None)
        return None


@contextmanager
def _torch_stand_ins() -> Iterator[None]:
    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    sys.modules["torch"], sys.modules["torch._utils"] = _TORCH, _TORCH_UTILS
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                del sys.modules[name]
            else:
                sys.modules[name] = module


def _storages_of(state: Mapping[str, object]) -> list[Storage]:
    """The storages the state dict's tensors use, once each, in first-use order (as torch writes them)."""
    found: dict[str, Storage] = {}
    for value in state.values():
        if isinstance(value, Tensor):
            found.setdefault(value.storage.key, value.storage)
    return list(found.values())


def checkpoint_bytes(
    state: Mapping[str, object],
    *,
    sys_info: object = SYS_INFO,
    storages: list[Storage] | None = None,
    declared_counts: Mapping[str, int] | None = None,
) -> bytes:
    """The file `torch.save(state)` would write in the legacy format.

    `storages` overrides which storages the data section holds (default: those the tensors use) and
    `declared_counts` the element count written before a storage's data, to build damaged files.
    """
    storages = _storages_of(state) if storages is None else storages
    declared_counts = declared_counts or {}
    buffer = io.BytesIO()
    with _torch_stand_ins():
        for header in (LEGACY_MAGIC, LEGACY_PROTOCOL, sys_info):
            pickle.dump(header, buffer, protocol=2)
        _CheckpointPickler(buffer, protocol=2).dump(OrderedDict(state))
        pickle.dump([storage.key for storage in storages], buffer, protocol=2)
    for storage in storages:
        count = declared_counts.get(storage.key, storage.data.size)
        buffer.write(struct.pack("<q", count))
        buffer.write(storage.data.astype(storage.data.dtype.newbyteorder("<")).tobytes())
    return buffer.getvalue()


def write_checkpoint(path: Path, state: Mapping[str, object], **options) -> Path:
    """Write `checkpoint_bytes(state, **options)` to `path`."""
    path.write_bytes(checkpoint_bytes(state, **options))
    return path
