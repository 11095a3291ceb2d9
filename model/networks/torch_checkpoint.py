"""Read a PyTorch legacy (pre-1.6) `.pth` state dict into NumPy arrays, without PyTorch and without trusting it.

Such a file is a few pickles (magic number, protocol, system info, the state dict, the storage keys)
followed by each tensor storage's raw little-endian bytes. Unpickling runs code named in the file, so the
unpickler here admits only the handful of names a state dict uses; anything else is refused.
"""

from __future__ import annotations

import math
import pickle
import struct
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from realcheck.model.errors import WeightsUnavailableError

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}
_MAX_STORAGE_BYTES = 1 << 31  # no backbone checkpoint comes near 2 GB: a larger count is a damaged file


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype


@dataclass
class _Storage:
    key: str
    dtype: np.dtype
    size: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def materialize(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise WeightsUnavailableError(f"checkpoint has no data for storage {self.storage.key}")
        count = math.prod(self.shape)  # Python ints: a hostile shape cannot overflow to a small count
        if count * data.itemsize > _MAX_STORAGE_BYTES:
            raise WeightsUnavailableError(
                f"checkpoint tensor of implausible shape {self.shape} (damaged file)"
            )
        last = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride)) if count else 0
        if self.offset < 0 or last >= len(data) and count:
            raise WeightsUnavailableError("checkpoint tensor lies outside its storage (damaged file)")
        itemsize = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :],
            shape=self.shape,
            strides=tuple(s * itemsize for s in self.stride),
            writeable=False,
        )
        return np.array(view)  # a copy: contiguous and independent of the storage buffer


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    shape, strides = tuple(int(n) for n in size), tuple(int(s) for s in stride)
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor in the weights file has no storage")
    # torch never writes negative sizes or strides; a negative stride would read before the storage's start.
    if len(shape) != len(strides) or min(shape + strides, default=0) < 0:
        raise pickle.UnpicklingError(f"a tensor in the weights file has shape {shape} and stride {strides}")
    return _TensorRef(storage, int(storage_offset), shape, strides)


class _StateDictUnpickler(pickle.Unpickler):
    """Admits OrderedDict, the tensor rebuild functions and storage types; nothing else."""

    def __init__(self, handle: BinaryIO):
        super().__init__(handle)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch._utils" and name in {"_rebuild_tensor", "_rebuild_tensor_v2"}:
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id in weights file: {pid!r}")
        storage_type, key, _location, size = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError("weights file names an unknown storage type")
        key = str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(key, storage_type.dtype, int(size))
        return self.storages[key]


def _load_plain(handle: BinaryIO):
    """A pickle holding only plain values (the header pickles): no class may be loaded."""
    unpickler = _StateDictUnpickler(handle)
    unpickler.find_class = _refuse_any_class  # type: ignore[method-assign]
    return unpickler.load()


def _refuse_any_class(module: str, name: str):
    raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file header")


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a legacy PyTorch state dict file, by name, as NumPy arrays.

    Raises WeightsUnavailableError for a missing file, a file in another format (PyTorch >= 1.6 zip
    files) or a damaged one, and for any pickled object a state dict does not contain.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailableError(f"weights file not found: {path}")
    try:
        with path.open("rb") as handle:
            if handle.read(2) == b"PK":
                raise WeightsUnavailableError(
                    f"{path} is a PyTorch >= 1.6 zip checkpoint; only the legacy format is supported"
                )
            handle.seek(0)
            if _load_plain(handle) != _LEGACY_MAGIC or _load_plain(handle) != _LEGACY_PROTOCOL:
                raise WeightsUnavailableError(f"{path} is not a legacy PyTorch checkpoint")
            _load_plain(handle)  # system info: byte order and type sizes
            unpickler = _StateDictUnpickler(handle)
            state = unpickler.load()
            keys = _load_plain(handle)
            for key in keys:
                storage = unpickler.storages.get(str(key))
                (count,) = struct.unpack("<q", _read_exactly(handle, 8))
                dtype = storage.dtype if storage else np.dtype("<f4")
                if count < 0 or count * dtype.itemsize > _MAX_STORAGE_BYTES:
                    raise WeightsUnavailableError(f"{path}: implausible storage size {count}")
                raw = _read_exactly(handle, count * dtype.itemsize)
                if storage is not None:
                    storage.data = np.frombuffer(raw, dtype=dtype)
    except WeightsUnavailableError:
        raise
    except (pickle.UnpicklingError, EOFError, struct.error, ValueError, TypeError, AttributeError) as error:
        raise WeightsUnavailableError(f"cannot read weights file {path}: {error}") from error
    if not isinstance(state, dict):
        raise WeightsUnavailableError(f"{path} does not hold a state dict")
    return {str(name): ref.materialize() for name, ref in state.items() if isinstance(ref, _TensorRef)}


def _read_exactly(handle: BinaryIO, count: int) -> bytes:
    data = handle.read(count)
    if len(data) != count:
        raise WeightsUnavailableError("weights file ends early (truncated download?)")
    return data
