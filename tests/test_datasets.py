"""Finding labelled images: plain class folders, the DeepGuardDB layout and its quirks, and bad data."""

from __future__ import annotations

import io
import json
from collections import defaultdict

import imagegen
import pytest
from PIL import Image

from realcheck.model.data.datasets import discover, image_key
from realcheck.model.errors import DataError
from realcheck.model.labels import AI, REAL, label_for_folder

GENERATORS = {
    "SD_dataset": "stable-diffusion",
    "DALLE_dataset": "dall-e-3",
    "IMAGEN_dataset": "imagen",
    "GLIDE_dataset": "glide",
}


def write(root, relative, label="real", seed=0):
    return imagegen.write_image(root / relative, label, size=32, seed=seed)


def by_path(discovery):
    return {sample.path: sample for sample in discovery.samples}


def members_by_group(discovery):
    groups = defaultdict(set)
    for sample in discovery.samples:
        groups[sample.group].add(sample.path)
    return groups


# ------------------------------------------------------------------------------------------- plain folders


@pytest.mark.parametrize(
    "real_name,ai_name",
    [("real", "fake"), ("0_real", "1_fake"), ("human", "artificial"), ("Real", "FAKE"), ("nature", "ai")],
)
def test_class_folder_conventions(tmp_path, real_name, ai_name):
    imagegen.make_folder_dataset(tmp_path, per_class=3, size=32, real_name=real_name, ai_name=ai_name)
    discovery = discover(tmp_path)
    assert discovery.layout == "folders"
    assert len(discovery.samples) == 6
    for sample in discovery.samples:
        expected = AI if sample.path.startswith(ai_name + "/") else REAL
        assert sample.label == expected, sample.path
        assert sample.source == "unknown"
        assert sample.group == sample.path  # plain folders: every image is its own group
    assert discovery.summary()["real"] == 3 and discovery.summary()["ai"] == 3


def test_fake_is_class_one_although_it_sorts_first(tmp_path):
    write(tmp_path, "fake/a.png", "ai")
    write(tmp_path, "real/b.png", "real")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake", "real"]
    samples = by_path(discover(tmp_path))
    assert samples["fake/a.png"].label == AI == 1
    assert samples["fake/a.png"].label_name == "ai"
    assert samples["real/b.png"].label == REAL == 0


def test_label_for_folder_is_explicit_and_case_insensitive():
    assert label_for_folder("FAKE") == AI
    assert label_for_folder(" Real ") == REAL
    assert label_for_folder("1_fake") == AI
    assert label_for_folder("0_real") == REAL
    assert label_for_folder("train") is None
    assert label_for_folder("cats") is None


def test_genimage_layout_names_generators_from_the_path(tmp_path):
    for index, generator in enumerate(["sdv4", "midjourney"]):
        for split in ("train", "val"):
            write(tmp_path, f"{generator}/{split}/ai/a{index}.png", "ai", seed=index)
            write(tmp_path, f"{generator}/{split}/nature/n{index}.png", "real", seed=index)
    write(tmp_path, "progan/cat/1_fake/x.png", "ai")  # CNNDetection: generator/category/class
    write(tmp_path, "progan/cat/0_real/y.png", "real")
    discovery = discover(tmp_path)
    samples = by_path(discovery)
    assert samples["sdv4/train/ai/a0.png"].source == "sdv4"
    assert samples["midjourney/val/nature/n1.png"].source == "midjourney"
    assert samples["midjourney/val/nature/n1.png"].label == REAL
    assert samples["progan/cat/1_fake/x.png"].source == "progan/cat"
    assert discovery.summary()["by_generator"] == {
        "midjourney": {"real": 2, "ai": 2},
        "progan/cat": {"real": 1, "ai": 1},
        "sdv4": {"real": 2, "ai": 2},
    }


def test_only_the_outermost_class_folder_counts(tmp_path):
    write(tmp_path, "fake/real_looking/a.png", "ai")
    write(tmp_path, "fake/real/b.png", "ai")
    write(tmp_path, "real/c.png", "real")
    samples = by_path(discover(tmp_path))
    assert samples["fake/real_looking/a.png"].label == AI
    assert samples["fake/real/b.png"].label == AI


def test_non_images_and_hidden_files_are_ignored_not_reported(tmp_path):
    imagegen.make_folder_dataset(tmp_path, per_class=2, size=32)
    (tmp_path / "real" / "notes.txt").write_text("not an image")
    (tmp_path / "real" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (tmp_path / "fake" / "._f000.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    discovery = discover(tmp_path)
    assert len(discovery.samples) == 4
    assert discovery.skipped == []


def test_corrupt_files_are_skipped_with_reasons(tmp_path):
    imagegen.make_folder_dataset(tmp_path, per_class=3, size=32)
    good_jpeg = imagegen.image_bytes("real", size=64, fmt="JPEG")
    frames = [Image.new("RGB", (16, 16), colour) for colour in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    ppm = io.BytesIO()
    Image.new("RGB", (8, 8)).save(ppm, format="PPM")
    bad = {
        "real/text.png": b"hello, I am not a picture",
        "real/cut.jpg": good_jpeg[: len(good_jpeg) // 2],
        "fake/empty.jpg": b"",
        "fake/cut.gif": gif.getvalue()[:100],  # Pillow raises IndexError here, not OSError
        "fake/really_ppm.png": ppm.getvalue(),
    }
    for relative, data in bad.items():
        (tmp_path / relative).write_bytes(data)
    discovery = discover(tmp_path)
    assert len(discovery.samples) == 6
    reasons = {entry["path"]: entry["reason"] for entry in discovery.skipped}
    assert set(reasons) == set(bad)
    assert "not an image" in reasons["real/text.png"]
    assert "truncated" in reasons["real/cut.jpg"].lower()
    assert "unsupported image format PPM" in reasons["fake/really_ppm.png"]
    assert all(reason for reason in reasons.values())
    assert discovery.summary()["skipped"] == 5


def test_verify_false_skips_decoding(tmp_path):
    imagegen.make_folder_dataset(tmp_path, per_class=2, size=32)
    (tmp_path / "real" / "broken.png").write_bytes(b"junk")
    assert len(discover(tmp_path, verify=False).samples) == 5
    assert len(discover(tmp_path, verify=True).samples) == 4


# ------------------------------------------------------------------------------------------- unusable data


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="not found") as raised:
        discover(tmp_path / "nowhere")
    assert "nowhere" in str(raised.value)


def test_file_instead_of_folder(tmp_path):
    path = write(tmp_path, "one.png")
    with pytest.raises(DataError, match="not a folder"):
        discover(path)


def test_empty_folder_explains_the_expected_layout(tmp_path):
    with pytest.raises(DataError, match="no class folders") as raised:
        discover(tmp_path)
    assert "real" in str(raised.value) and "fake" in str(raised.value)


def test_class_folders_without_images(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "readme.txt").write_text("nothing here")
    with pytest.raises(DataError, match="no usable images"):
        discover(tmp_path)


def test_only_corrupt_images(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "fake").mkdir()
    (tmp_path / "real" / "a.png").write_bytes(b"junk")
    (tmp_path / "fake" / "b.png").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"no usable images .*2 skipped"):
        discover(tmp_path)


def test_one_class_only(tmp_path):
    write(tmp_path, "real/a.png")
    write(tmp_path, "real/b.png", seed=1)
    with pytest.raises(DataError, match="only one class") as raised:
        discover(tmp_path)
    assert "no ai images" in str(raised.value)
    assert "Both classes are needed" in str(raised.value)


def test_one_class_left_after_corrupt_files_are_dropped(tmp_path):
    write(tmp_path, "real/a.png")
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "b.png").write_bytes(b"junk")
    with pytest.raises(DataError, match="no ai images"):
        discover(tmp_path)


# ------------------------------------------------------------------------------------------- DeepGuardDB


@pytest.fixture
def deepguard(tmp_path):
    """A fresh DeepGuardDB_v1 tree per test: some tests damage it."""
    return imagegen.make_deepguard_dataset(tmp_path, pairs_per_generator=6, size=32)


def test_image_key_strips_doubled_and_mixed_extensions():
    assert image_key("000000000009.jpg") == "000000000009"
    assert image_key("000000000009.jpg.png") == "000000000009"
    assert image_key("000000000009.JPG.webp") == "000000000009"
    assert image_key("000000000009.jpeg") == "000000000009"
    assert image_key("Photo.v2") == "photo.v2"  # not an image extension: kept


def test_deepguard_layout_is_found_at_the_root_and_at_its_parent(deepguard):
    at_root = discover(deepguard)
    at_parent = discover(deepguard.parent)
    assert at_root.layout == at_parent.layout == "deepguarddb"
    assert at_root.root == at_parent.root == deepguard
    assert at_root.samples == at_parent.samples


def test_deepguard_counts_and_generator_names(deepguard):
    discovery = discover(deepguard)
    # Per generator: 6 pairs, one extra `A` fake and one real whose fake is missing.
    assert discovery.summary()["by_generator"] == {
        name: {"real": 7, "ai": 7} for name in sorted(GENERATORS.values())
    }
    for sample in discovery.samples:
        folder, class_folder = sample.path.split("/")[:2]
        assert sample.source == GENERATORS[folder]
        assert sample.label == (AI if class_folder == "fake" else REAL)


def test_deepguard_pairs_doubled_extensions_through_the_json(deepguard):
    group = {sample.path: sample.group for sample in discover(deepguard).samples}
    # The JSON names both `<id>.jpg`; on disk: real `.jpg.png` with fake `.jpg.png`, real `.jpg` with
    # fake `.jpg.webp` or `.jpg.png`.
    assert group["SD_dataset/real/sd000000003.jpg.png"] == group["SD_dataset/fake/sd000000003.jpg.png"]
    assert group["SD_dataset/real/sd000000004.jpg"] == group["SD_dataset/fake/sd000000004.jpg.webp"]
    assert group["GLIDE_dataset/real/gl000000001.jpg"] == group["GLIDE_dataset/fake/gl000000001.jpg.png"]
    assert group["SD_dataset/real/sd000000001.jpg"] != group["SD_dataset/real/sd000000002.jpg"]


def test_deepguard_a_suffix_record_shares_its_real_images_group(deepguard):
    discovery = discover(deepguard)
    groups = members_by_group(discovery)
    samples = by_path(discovery)
    prefixes = {"SD_dataset": "sd", "DALLE_dataset": "da", "IMAGEN_dataset": "im", "GLIDE_dataset": "gl"}
    for folder, prefix in prefixes.items():
        group = samples[f"{folder}/fake/{prefix}000000000A.png"].group
        assert groups[group] == {
            f"{folder}/real/{prefix}000000000.jpg.png",
            f"{folder}/fake/{prefix}000000000.jpg.webp",
            f"{folder}/fake/{prefix}000000000A.png",
        }


def test_deepguard_record_with_missing_fake_keeps_its_real_image(deepguard):
    discovery = discover(deepguard)
    samples = by_path(discovery)
    lonely = samples["IMAGEN_dataset/real/im000000099.jpeg"]
    assert lonely.label == REAL
    assert members_by_group(discovery)[lonely.group] == {lonely.path}
    assert "4 JSON records name a fake image that is not on disk" in discovery.notes


def test_deepguard_duplicate_copy_is_skipped_and_listed(deepguard):
    discovery = discover(deepguard)
    duplicate = "SD_dataset/real/sd000000001 (1).jpg"
    assert duplicate not in by_path(discovery)
    assert "SD_dataset/real/sd000000001.jpg" in by_path(discovery)
    reasons = {entry["path"]: entry["reason"] for entry in discovery.skipped}
    assert reasons == {duplicate: "duplicate copy of another file"}


def test_deepguard_numbered_copy_without_original_is_kept(deepguard):
    write(deepguard, "GLIDE_dataset/real/gl000000077 (1).png", seed=7)
    assert "GLIDE_dataset/real/gl000000077 (1).png" in by_path(discover(deepguard))


def test_deepguard_without_json_pairs_by_file_name(deepguard):
    (deepguard / "json_files" / "DeepGuardDB.json").unlink()
    discovery = discover(deepguard)
    assert any("DeepGuardDB.json not found" in note for note in discovery.notes)
    assert len(discovery.samples) == 56
    group = {sample.path: sample.group for sample in discovery.samples}
    assert group["DALLE_dataset/real/da000000002.jpg"] == group["DALLE_dataset/fake/da000000002.jpg.webp"]
    # Without the JSON nothing ties the `A` fake to its real image.
    lonely = "DALLE_dataset/fake/da000000000A.png"
    assert members_by_group(discovery)[group[lonely]] == {lonely}


def test_deepguard_groups_never_span_generators(deepguard):
    generators = defaultdict(set)
    for sample in discover(deepguard).samples:
        generators[sample.group].add(sample.source)
    assert all(len(names) == 1 for names in generators.values())


def test_deepguard_corrupt_image_is_skipped_and_its_pair_partner_kept(deepguard):
    broken = deepguard / "SD_dataset" / "fake" / "sd000000002.jpg.webp"
    broken.write_bytes(broken.read_bytes()[:40])
    discovery = discover(deepguard)
    samples = by_path(discovery)
    assert "SD_dataset/fake/sd000000002.jpg.webp" not in samples
    assert "SD_dataset/real/sd000000002.jpg" in samples
    assert "SD_dataset/fake/sd000000002.jpg.webp" in {entry["path"] for entry in discovery.skipped}


def test_deepguard_unreadable_json_is_a_data_error(deepguard):
    (deepguard / "json_files" / "DeepGuardDB.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="cannot read"):
        discover(deepguard)
    (deepguard / "json_files" / "DeepGuardDB.json").write_text('{"a": 1}', encoding="utf-8")
    with pytest.raises(DataError, match="JSON array"):
        discover(deepguard)


def test_deepguard_unknown_platform_is_noted(deepguard):
    path = deepguard / "json_files" / "DeepGuardDB.json"
    records = json.loads(path.read_text(encoding="utf-8"))
    record = {"id": "x", "real_image_file_name": "x.jpg", "fake_image_file_name": "x.jpg"}
    records.append(record | {"platform": "midjourney"})
    path.write_text(json.dumps(records), encoding="utf-8")
    assert "1 JSON records have an unknown platform" in discover(deepguard).notes


# ----------------------------------------------------------------------------------- sources and one class


def test_sources_come_from_manifest_beside_the_class_folders(tmp_path):
    collection = tmp_path / "wild"
    for index, (folder, source) in enumerate([("real", "cameras"), ("real", "scans"), ("fake", "mj")]):
        write(collection, f"{folder}/{source}_{index}.jpg", seed=index)
    (collection / "manifest.csv").write_text(
        "relpath,label,source\nreal/cameras_0.jpg,real,cameras\nreal/scans_1.jpg,real,scans\n"
        "fake/mj_2.jpg,fake,midjourney\n",
        encoding="utf-8",
    )
    discovery = discover(tmp_path)  # the manifest sits in a data set folder below the root
    assert {s.path: s.source for s in discovery.samples} == {
        "wild/real/cameras_0.jpg": "cameras",
        "wild/real/scans_1.jpg": "scans",
        "wild/fake/mj_2.jpg": "midjourney",
    }
    assert "sources from manifest.csv" in discovery.notes


def test_sub_folders_of_a_class_folder_name_sources(tmp_path):
    write(tmp_path, "fake/midjourney/a.png")
    write(tmp_path, "fake/flux/b.png", seed=1)
    write(tmp_path, "real/c.png", seed=2)
    write(tmp_path, "gen2/train/fake/sdxl/d.png", seed=3)
    sources = {s.path: s.source for s in discover(tmp_path).samples}
    assert sources["fake/midjourney/a.png"] == "midjourney"
    assert sources["fake/flux/b.png"] == "flux"
    assert sources["real/c.png"] == "unknown"
    assert sources["gen2/train/fake/sdxl/d.png"] == "gen2/sdxl"


def test_a_manifest_without_source_columns_is_ignored(tmp_path):
    imagegen.make_folder_dataset(tmp_path, per_class=2, size=32)
    (tmp_path / "manifest.csv").write_text("name,size\nx,1\n", encoding="utf-8")
    assert {s.source for s in discover(tmp_path).samples} == {"unknown"}


def test_one_class_folder_is_refused_for_training_and_allowed_for_evaluation(tmp_path):
    write(tmp_path, "fake/a.png")
    write(tmp_path, "fake/b.png", seed=1)
    with pytest.raises(DataError, match="only one class"):
        discover(tmp_path)
    discovery = discover(tmp_path, both_classes=False)
    assert [s.label for s in discovery.samples] == [AI, AI]


@pytest.mark.parametrize("label", [REAL, AI])
def test_label_names_the_class_of_a_folder_without_class_folders(tmp_path, label):
    write(tmp_path, "camera_a/1.jpg")
    write(tmp_path, "camera_b/2.jpg", seed=1)
    write(tmp_path, "3.jpg", seed=2)
    with pytest.raises(DataError, match="--label"):
        discover(tmp_path)
    discovery = discover(tmp_path, both_classes=False, label=label)
    assert {s.path: (s.label, s.source) for s in discovery.samples} == {
        "camera_a/1.jpg": (label, "camera_a"),
        "camera_b/2.jpg": (label, "camera_b"),
        "3.jpg": (label, "unknown"),
    }
