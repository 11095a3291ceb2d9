"""The artifact's metadata schema: one table that builds, checks and documents metadata.json."""

from __future__ import annotations

import json

import pytest

from realcheck.model.artifacts.artifact import METADATA_FILE, bundled_model_dir, read_metadata, write_metadata
from realcheck.model.artifacts.metadata import (
    FIELDS_BY_KEY,
    FORMAT_VERSION,
    PUBLIC_FIELDS,
    REQUIRED_FIELDS,
    build_metadata,
    validate_new_metadata,
)
from realcheck.model.errors import ArtifactError
from realcheck.server.config import ServerConfig
from realcheck.server.openapi import openapi_document


def valid_metadata() -> dict:
    return build_metadata(
        "realcheck-schema-test",
        "0.0.1-test",
        backbone="efficientnet_lite0",
        input_size=32,
        threshold=0.5,
        uncertainty_band=[0.4, 0.6],
    )


def artifact_folder(tmp_path, metadata: dict):
    """A folder whose metadata.json holds `metadata` as given (no checks on the way in)."""
    (tmp_path / METADATA_FILE).write_text(json.dumps(metadata), encoding="utf-8")
    return tmp_path


def test_the_bundled_metadata_is_valid_and_every_field_is_in_the_table():
    path = bundled_model_dir() / METADATA_FILE
    assert validate_new_metadata(read_metadata(bundled_model_dir()), path)["name"].startswith("realcheck")


def test_built_metadata_is_read_back_unchanged(tmp_path):
    metadata = valid_metadata()
    write_metadata(tmp_path, metadata)
    assert read_metadata(tmp_path) == json.loads(json.dumps(metadata))
    assert metadata["format_version"] == FORMAT_VERSION and metadata["labels"] == {"0": "real", "1": "ai"}


def test_a_reader_gets_the_table_default_of_a_field_an_older_artifact_leaves_out(tmp_path):
    metadata = {
        key: value
        for key, value in valid_metadata().items()
        if key not in {"input_mode", "input_fill", "input_filter"}
    }
    read = read_metadata(artifact_folder(tmp_path, metadata))
    assert (read["input_mode"], read["input_fill"], read["input_filter"]) == ("resize", "upscale", "none")


@pytest.mark.parametrize("key", REQUIRED_FIELDS)
def test_a_missing_required_field_is_named_with_the_file(tmp_path, key):
    metadata = valid_metadata()
    del metadata[key]
    folder = artifact_folder(tmp_path, metadata)
    with pytest.raises(ArtifactError, match=f"lacks {key}") as raised:
        read_metadata(folder)
    assert str(folder / METADATA_FILE) in str(raised.value)


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("threshold", "0.5", "threshold should be a JSON number"),
        ("input_size", 32.0, "input_size should be a JSON integer"),
        ("input_size", True, "input_size should be a JSON integer"),
        ("uncertainty_band", 0.5, "uncertainty_band should be a JSON array"),
        ("uncertainty_band", [0.4, "high"], "every item of uncertainty_band should be a JSON number"),
        ("labels", {"0": "real", "1": 1}, "every item of labels should be a JSON string"),
        ("format_version", "1", "format_version should be a JSON integer"),
    ],
)
def test_an_ill_typed_field_is_named_with_the_file(tmp_path, key, value, says):
    folder = artifact_folder(tmp_path, valid_metadata() | {key: value})
    with pytest.raises(ArtifactError, match=says) as raised:
        read_metadata(folder)
    assert str(folder / METADATA_FILE) in str(raised.value)


def test_a_newer_format_is_refused_before_anything_else(tmp_path):
    folder = artifact_folder(tmp_path, {"format_version": FORMAT_VERSION + 1})
    with pytest.raises(ArtifactError, match="upgrade RealCheck"):
        read_metadata(folder)


def test_a_file_that_is_no_json_object_is_refused(tmp_path):
    with pytest.raises(ArtifactError, match="is not a JSON object"):
        read_metadata(artifact_folder(tmp_path, [1, 2]))


def test_unknown_fields_are_read_but_never_written(tmp_path):
    folder = artifact_folder(tmp_path, valid_metadata() | {"from_the_future": 1})
    assert read_metadata(folder)["from_the_future"] == 1
    with pytest.raises(ArtifactError, match="unknown metadata field.*from_the_future"):
        write_metadata(tmp_path, read_metadata(folder))
    with pytest.raises(ArtifactError, match="from_the_future"):
        build_metadata("x", from_the_future=1)


def test_a_wrong_type_fails_when_metadata_is_built():
    with pytest.raises(ArtifactError, match="seed should be a JSON integer"):
        build_metadata("x", seed="42")


def test_the_openapi_model_schema_is_the_public_fields_as_the_table_types_them():
    schema = openapi_document(ServerConfig())["components"]["schemas"]["Model"]
    described = [key for key in schema["properties"] if key in FIELDS_BY_KEY]
    assert described == list(PUBLIC_FIELDS)
    from_table = [key for key in schema["required"] if key in FIELDS_BY_KEY]
    assert from_table == [key for key in PUBLIC_FIELDS if FIELDS_BY_KEY[key].required]
    # What the server derives from the metadata rather than copies: always there.
    assert set(schema["required"]) - set(from_table) == {"accuracy_statement"}
    for key in PUBLIC_FIELDS:
        field = FIELDS_BY_KEY[key]
        assert schema["properties"][key]["type"] == (
            [field.json_type, "null"] if field.nullable else field.json_type
        )
        assert schema["properties"][key]["description"] == FIELDS_BY_KEY[key].description
