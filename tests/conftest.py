"""Shared fixtures: synthetic data sets and one small trained artifact reused by many tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).parent))

import imagegen  # noqa: E402
import provenancegen  # noqa: E402

# EfficientNet-Lite0 (the bundled model's backbone): a quarter of ResNet-50's weights, so the tiny trainings
# and ONNX exports of the suite take half the time and a fraction of the memory.
TINY_BACKBONE = "efficientnet_lite0"
# `compare` takes its backbones from --backbones, so it gets the tiny flags without --backbone.
TINY_ANY_BACKBONE = ["--training-size", "32", "--batch-size", "16", "--weights", "none", "--patience", "0"]
TINY = [*TINY_ANY_BACKBONE, "--backbone", TINY_BACKBONE]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked heavy_children run first: their children's gigabytes then sit beside a small test process,
    not beside one that earlier tests grew (the suite keeps under 6 GB in all)."""
    items.sort(key=lambda item: item.get_closest_marker("heavy_children") is None)


@pytest.fixture(scope="session")
def folder_dataset(tmp_path_factory) -> Path:
    """Plain real/fake folders, 24 images per class, 48 px."""
    return imagegen.make_folder_dataset(tmp_path_factory.mktemp("folders"), per_class=24)


@pytest.fixture(scope="session")
def deepguard_dataset(tmp_path_factory) -> Path:
    """A DeepGuardDB_v1 tree with its quirks."""
    return imagegen.make_deepguard_dataset(tmp_path_factory.mktemp("deepguard"))


@pytest.fixture(scope="session")
def trained_artifact(tmp_path_factory, folder_dataset) -> Path:
    """One artifact trained for an epoch on tiny images through the real CLI."""
    from realcheck.cli import main

    out = tmp_path_factory.mktemp("artifact") / TINY_BACKBONE
    status = main(["-q", "train", "--data", str(folder_dataset), "--out", str(out), "--epochs", "1", *TINY])
    assert status == 0
    return out


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory) -> Path:
    """An untrained artifact at 32 px, written in seconds: for tests of serving, not of learning."""
    from realcheck.model.artifacts.artifact import save_untrained_artifact

    out = tmp_path_factory.mktemp("tiny") / f"{TINY_BACKBONE}-tiny"
    return save_untrained_artifact(out, TINY_BACKBONE, 32, "realcheck-tiny", "0.0.1-test")


@pytest.fixture(scope="session")
def condition_rules_artifact(tmp_path_factory, tiny_artifact) -> Path:
    """The tiny artifact in crop mode with a rule for each image condition: its main rule calls nothing AI,
    its small-image rule everything and its compressed-image rule nothing certain, so which one decided
    shows in every verdict and range."""
    import json

    folder = tmp_path_factory.mktemp("condition-rules") / "artifact"
    folder.mkdir()
    for item in tiny_artifact.iterdir():
        if item.name != "metadata.json":
            (folder / item.name).symlink_to(item)  # the same model: its cached ONNX export serves it
    metadata = json.loads((tiny_artifact / "metadata.json").read_text()) | {
        "input_mode": "crop",
        "threshold": 1.0,
        "uncertainty_band": [1.0, 1.0],
        "small_image_rule": {
            "threshold": 0.0,
            "uncertainty_band": [0.0, 0.0],
            "applies_to": "images of 21 px or less on their shorter side",
        },
        "compressed_image_rule": {
            "threshold": 0.0,
            "uncertainty_band": [0.0, 1.0],
            "applies_to": "JPEG files saved at quality 50 or less",
        },
    }
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return folder


@pytest.fixture(scope="session")
def onnx_cache_dir(tmp_path_factory, tiny_artifact) -> Path:
    """A runtime cache holding the tiny artifact's ONNX export, exported once for every serving test."""
    from realcheck.model.artifacts.artifact import read_metadata
    from realcheck.server.backends import ensure_onnx_export

    cache = tmp_path_factory.mktemp("runtime-cache")
    ensure_onnx_export(tiny_artifact, cache, read_metadata(tiny_artifact)["name"])
    return cache


@pytest.fixture(scope="module")
def service(tiny_artifact, onnx_cache_dir):
    """The tiny model loaded in this process (ONNX Runtime) for the Flask test-client tests of a module."""
    from realcheck.server.config import ServerConfig
    from realcheck.server.service import PredictionService

    loaded = PredictionService(
        ServerConfig(model_dir=tiny_artifact, backend="onnx", cache_dir=onnx_cache_dir)
    ).start()
    yield loaded
    loaded.stop()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory, tiny_artifact, onnx_cache_dir):
    """`realcheck serve` in a real process on a free loopback port (ONNX Runtime, few threads)."""
    from serving import LiveServer

    server = LiveServer(
        tiny_artifact,
        onnx_cache_dir,
        tmp_path_factory.mktemp("server-log") / "serve.log",
        "--threads",
        "4",
        "--max-batch-size",
        "8",
        "--max-request-mb",
        "2",
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def listener():
    """A TCP listener on 127.0.0.1 counting connections: proof that nothing fetched a URL."""
    counter = provenancegen.ConnectionCounter()
    yield counter
    counter.close()


@pytest.fixture(scope="session", autouse=True)
def private_data_home(tmp_path_factory):
    """Nothing a test runs writes to the user's data folder (the default feedback database lives there)."""
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("data-home"))
    os.environ.pop("REALCHECK_FEEDBACK_DB", None)


@pytest.fixture(scope="session")
def postgres_cluster():
    """A real PostgreSQL server of the tests' own (tests/databases.py), started on first use."""
    from databases import PostgresCluster, postgres_bin_dir

    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL is not installed, so the PostgreSQL feedback tests are skipped: "
            "apt-get install -y postgresql (scripts/test.sh does it when run as root)"
        )
    cluster = PostgresCluster(bin_dir)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def feedback_db(request, tmp_path) -> str:
    """A fresh, empty feedback database: a SQLite file, or a new database in the test PostgreSQL cluster."""
    if request.param == "sqlite":
        return str(tmp_path / "feedback" / "reports.sqlite3")
    return request.getfixturevalue("postgres_cluster").new_database()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright's browsers: the system Chromium (never a Playwright download), headless, sandbox off
    (CI runs as root)."""
    return browser_type_launch_args | {
        "executable_path": "/usr/bin/chromium",
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
        ],
    }
