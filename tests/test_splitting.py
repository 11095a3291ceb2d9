"""Pair-aware, stratified, seeded splits and their CSV manifest."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import imagegen
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realcheck.model.data.datasets import Sample, discover
from realcheck.model.data.splitting import (
    SPLITS,
    load_manifest,
    save_manifest,
    source_folds,
    split_by_source,
    split_samples,
)
from realcheck.model.errors import DataError
from realcheck.model.labels import AI, REAL


@pytest.fixture(scope="module")
def deepguard_samples(tmp_path_factory):
    root = imagegen.make_deepguard_dataset(tmp_path_factory.mktemp("deepguard"), size=32)
    return discover(root).samples


def folder_samples(per_class=20, generators=("a", "b", "c")):
    """Plain-folder style samples: every image its own group."""
    samples = []
    for generator in generators:
        for label, name in ((REAL, "real"), (AI, "fake")):
            for index in range(per_class):
                path = f"{generator}/{name}/{index:04d}.png"
                samples.append(Sample(path=path, label=label, source=generator, group=path))
    return samples


def split_of_each_group(split):
    where = defaultdict(set)
    for name, samples in split.items():
        for sample in samples:
            where[sample.group].add(name)
    return where


def paths(samples):
    return sorted(sample.path for sample in samples)


def assert_partition(samples, split):
    assigned = [sample for name in SPLITS for sample in split[name]]
    assert paths(assigned) == paths(samples)  # every sample exactly once
    assert all(len(names) == 1 for names in split_of_each_group(split).values())


# ------------------------------------------------------------------------------------------- fractions


def test_fractions_are_respected():
    samples = folder_samples(per_class=100)  # 600 single-image groups in 6 strata of 100
    split = split_samples(samples, val_fraction=0.1, test_fraction=0.2, seed=0)
    assert_partition(samples, split)
    assert {name: len(split[name]) for name in SPLITS} == {"train": 420, "val": 60, "test": 120}


def test_fractions_are_roughly_respected_with_pairs():
    samples = []
    for generator in ("a", "b", "c", "d", "e"):
        for index in range(37):
            group = f"{generator}/real/{index}.png"
            samples.append(Sample(group, REAL, generator, group))
            samples.append(Sample(f"{generator}/fake/{index}.png", AI, generator, group))
    split = split_samples(samples, val_fraction=0.15, test_fraction=0.15, seed=3)
    assert_partition(samples, split)
    total = len(samples)
    assert abs(len(split["test"]) / total - 0.15) < 0.02
    assert abs(len(split["val"]) / total - 0.15) < 0.02
    assert abs(len(split["train"]) / total - 0.70) < 0.03


def test_zero_fractions_leave_those_splits_empty():
    samples = folder_samples(per_class=10)
    everything_in_train = split_samples(samples, val_fraction=0.0, test_fraction=0.0)
    assert paths(everything_in_train["train"]) == paths(samples)
    no_val = split_samples(samples, val_fraction=0.0, test_fraction=0.3)
    assert no_val["val"] == [] and len(no_val["test"]) == 18


@pytest.mark.parametrize(
    "val,test", [(-0.1, 0.15), (0.15, 1.0), (0.5, 0.5), (0.7, 0.4), (1.0, 0.0), (float("nan"), 0.1)]
)
def test_bad_fractions_are_a_data_error(val, test):
    with pytest.raises(DataError, match="split fractions"):
        split_samples(folder_samples(per_class=2), val_fraction=val, test_fraction=test)


# ------------------------------------------------------------------------------------------- seeds


def test_same_seed_same_split_whatever_the_input_order():
    samples = folder_samples(per_class=30)
    shuffled = samples[:]
    random.Random(5).shuffle(shuffled)
    assert split_samples(samples, seed=7) == split_samples(shuffled, seed=7)


def test_different_seeds_give_different_splits():
    samples = folder_samples(per_class=30)
    tests = {tuple(paths(split_samples(samples, seed=seed)["test"])) for seed in range(5)}
    assert len(tests) == 5


# ------------------------------------------------------------------------------------------- groups and strata


def test_deepguard_pairs_never_straddle_splits(deepguard_samples):
    groups = Counter(sample.group for sample in deepguard_samples)
    assert max(groups.values()) == 3  # the real image shared by a record and its `A` record
    for seed in range(20):
        split = split_samples(deepguard_samples, seed=seed)
        assert_partition(deepguard_samples, split)


def test_every_generator_reaches_every_split(deepguard_samples):
    # Each generator has 6 pair groups: at 15 % each, one goes to test, one to val, four stay in train.
    for seed in range(5):
        split = split_samples(deepguard_samples, seed=seed)
        for name in SPLITS:
            present = {(s.source, s.label) for s in split[name]}
            for generator in {s.source for s in deepguard_samples}:
                assert (generator, REAL) in present and (generator, AI) in present, (seed, name, generator)


def test_every_generator_and_class_reaches_every_split_in_plain_folders():
    samples = folder_samples(per_class=4)
    split = split_samples(samples, seed=1)
    for name in SPLITS:
        present = {(s.source, s.label) for s in split[name]}
        assert present == {(g, label) for g in ("a", "b", "c") for label in (REAL, AI)}


@pytest.mark.parametrize("n_groups", [1, 2, 3, 4, 5])
def test_small_strata_keep_a_group_for_training(n_groups):
    samples = [Sample(f"x{i}.png", AI, "tiny", f"x{i}.png") for i in range(n_groups)]
    split = split_samples(samples, seed=0)
    assert len(split["train"]) >= 1
    if n_groups >= 3:
        assert len(split["val"]) >= 1 and len(split["test"]) >= 1


@st.composite
def grouped_samples(draw):
    samples = []
    for group_index in range(draw(st.integers(min_value=0, max_value=60))):
        generator = draw(st.sampled_from(["g1", "g2", "g3"]))
        labels = draw(st.lists(st.sampled_from([REAL, AI]), min_size=1, max_size=3))
        for member, label in enumerate(labels):
            path = f"{generator}/{group_index}_{member}.png"
            samples.append(Sample(path=path, label=label, source=generator, group=f"group{group_index}"))
    return samples


@settings(max_examples=150, deadline=None)
@given(
    samples=grouped_samples(),
    val=st.floats(min_value=0.0, max_value=0.45),
    test=st.floats(min_value=0.0, max_value=0.45),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_split_properties(samples, val, test, seed):
    split = split_samples(samples, val_fraction=val, test_fraction=test, seed=seed)
    assert_partition(samples, split)
    assert split == split_samples(list(reversed(samples)), val_fraction=val, test_fraction=test, seed=seed)
    # Within each stratum (generator, classes in the group) the group counts follow the fractions.
    members = defaultdict(list)
    for sample in samples:
        members[sample.group].append(sample)
    strata = defaultdict(list)
    for group_id, group in members.items():
        strata[(group[0].source, tuple(sorted({m.label for m in group})))].append(group_id)
    where = split_of_each_group(split)
    for group_ids in strata.values():
        counts = Counter(next(iter(where[g])) for g in group_ids)
        n = len(group_ids)
        assert abs(counts["test"] - n * test) <= 1
        assert abs(counts["val"] - n * val) <= 1
        if test == 0:
            assert counts["test"] == 0
        if val == 0:
            assert counts["val"] == 0


# ------------------------------------------------------------------------------------------- manifest


def test_manifest_round_trip(deepguard_samples, tmp_path):
    split = split_samples(deepguard_samples, seed=11)
    path = tmp_path / "nested" / "split.csv"
    save_manifest(split, path)
    assert path.read_text(encoding="utf-8").splitlines()[0] == "path,label,source,group,split"
    assert load_manifest(path) == split
    assert load_manifest(path, available=deepguard_samples) == split


def test_a_manifest_written_before_the_source_column_was_named_so_still_loads(deepguard_samples, tmp_path):
    split = split_samples(deepguard_samples, seed=11)
    path = tmp_path / "split.csv"
    save_manifest(split, path)
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(["path,label,generator,group,split", *lines[1:]]) + "\n", encoding="utf-8")
    assert load_manifest(path) == split


def test_manifest_round_trip_keeps_awkward_paths(tmp_path):
    samples = [
        Sample('real/a, "quoted".png', REAL, "gen, with comma", 'real/a, "quoted".png'),
        Sample("fake/ünïcode 1.png", AI, "gen, with comma", "fake/ünïcode 1.png"),
    ]
    split = {"train": samples, "val": [], "test": []}
    save_manifest(split, tmp_path / "split.csv")
    assert load_manifest(tmp_path / "split.csv") == split


def test_manifest_with_byte_order_mark_loads(deepguard_samples, tmp_path):
    # A manifest opened and saved again in a spreadsheet gains a UTF-8 byte-order mark.
    split = split_samples(deepguard_samples, seed=2)
    save_manifest(split, tmp_path / "split.csv")
    marked = tmp_path / "marked.csv"
    marked.write_bytes(b"\xef\xbb\xbf" + (tmp_path / "split.csv").read_bytes())
    assert load_manifest(marked) == split


def test_load_with_available_drops_missing_rows(deepguard_samples, tmp_path):
    split = split_samples(deepguard_samples, seed=4)
    save_manifest(split, tmp_path / "split.csv")
    gone = {split["train"][0].path, split["test"][0].path}
    remaining = [s for s in deepguard_samples if s.path not in gone]
    loaded = load_manifest(tmp_path / "split.csv", available=remaining)
    for name in SPLITS:
        assert loaded[name] == [s for s in split[name] if s.path not in gone]
    assert sum(len(v) for v in loaded.values()) == len(deepguard_samples) - 2


def test_manifest_for_other_data_is_a_data_error(deepguard_samples, tmp_path):
    save_manifest(split_samples(deepguard_samples), tmp_path / "split.csv")
    other = folder_samples(per_class=2)
    with pytest.raises(DataError, match="none of the images"):
        load_manifest(tmp_path / "split.csv", available=other)


HEADER = "path,label,generator,group,split\n"


@pytest.mark.parametrize(
    "content,phrase",
    [
        pytest.param("", "not a split manifest", id="empty"),
        pytest.param("a,b,c\n1,2,3\n", "not a split manifest", id="other-csv"),
        pytest.param("path,label,split\nx.png,1,train\n", "not a split manifest", id="missing-columns"),
        pytest.param(HEADER + "x.png,1,gen,x.png,holdout\n", "unknown split 'holdout'", id="unknown-split"),
        pytest.param(
            HEADER + "x.png,ai,gen,x.png,train\n", r"label must be 0 \(real\) or 1 \(ai\)", id="label-name"
        ),
        pytest.param(HEADER + "x.png,2,gen,x.png,train\n", "label must be", id="label-2"),
        pytest.param(HEADER + "x.png,,gen,x.png,train\n", "label must be", id="label-empty"),
        pytest.param(HEADER + "x.png,1\n", "unknown split None", id="short-row"),
    ],
)
def test_bad_manifest_is_a_data_error(tmp_path, content, phrase):
    path = tmp_path / "split.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=phrase):
        load_manifest(path)


def test_binary_file_as_manifest_is_a_data_error(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(DataError, match="not a split manifest"):
        load_manifest(path)


def test_missing_manifest_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_manifest(tmp_path / "nowhere.csv")


# ------------------------------------------------------------------------------------ whole sources held out


def source_samples():
    """Sources of one class each, of different sizes, as most real collections are."""
    sizes = {"mj": (0, 30), "sdxl": (0, 20), "flux": (0, 8), "kolors": (0, 5), "phone": (25, 0)}
    sizes |= {"dslr": (18, 0), "scans": (9, 0), "stock": (6, 0)}
    samples = []
    for source, (n_real, n_ai) in sizes.items():
        for label, count in ((REAL, n_real), (AI, n_ai)):
            for index in range(count):
                path = f"{source}/{label}/{index:03d}.jpg"
                samples.append(Sample(path=path, label=label, source=source, group=path))
    return samples


def sources_of(samples):
    return {sample.source for sample in samples}


@pytest.mark.parametrize("folds", [2, 3, 4])
def test_source_folds_deal_every_source_to_one_fold_with_both_classes(folds):
    samples = source_samples()
    assignment = source_folds(samples, folds, seed=1)
    assert set(assignment) == sources_of(samples)
    assert set(assignment.values()) == set(range(folds))
    for fold in range(folds):
        held = [s for s in samples if assignment[s.source] == fold]
        assert {s.label for s in held} == {REAL, AI}, f"fold {fold} tests one class only"


def test_source_folds_are_seeded_and_refuse_too_many_folds():
    samples = source_samples()
    assert source_folds(samples, 3, seed=5) == source_folds(list(reversed(samples)), 3, seed=5)
    with pytest.raises(DataError, match="cannot fill"):
        source_folds(samples, 9)
    with pytest.raises(DataError, match="at least 2"):
        source_folds(samples, 1)


@pytest.mark.parametrize("seed", range(5))
def test_split_by_source_holds_whole_sources_out(seed):
    samples = source_samples()
    split = split_by_source(samples, val_fraction=0.2, test_fraction=0.2, seed=seed)
    assert_partition(samples, split)
    train, val, test = (sources_of(split[name]) for name in SPLITS)
    assert not (train & val or train & test or val & test), "a source straddles two splits"
    for name in SPLITS:
        assert {s.label for s in split[name]} == {REAL, AI}, f"{name} lacks a class"


def test_split_by_source_takes_the_given_test_sources():
    samples = source_samples()
    split = split_by_source(samples, 0.2, 0.0, seed=0, test_sources={"mj", "scans"})
    assert sources_of(split["test"]) == {"mj", "scans"}
    assert not sources_of(split["val"]) & {"mj", "scans"}
    with pytest.raises(DataError, match="unknown or already held-out test source"):
        split_by_source(samples, 0.2, 0.0, test_sources={"nowhere"})


def test_split_by_source_takes_the_given_val_sources():
    samples = source_samples()
    split = split_by_source(samples, 0.5, 0.0, seed=0, val_sources={"flux", "dslr"})
    assert sources_of(split["val"]) == {"flux", "dslr"} and split["test"] == []
    with pytest.raises(DataError, match="already held-out val source"):
        split_by_source(samples, 0.2, 0.0, test_sources={"mj"}, val_sources={"mj"})


def test_split_by_source_without_test_fraction_has_no_test_split():
    split = split_by_source(source_samples(), 0.25, 0.0, seed=3)
    assert split["test"] == [] and split["val"] and split["train"]
