"""Training beyond one machine: `realcheck train --distribute multiworker` with two worker processes on
loopback (TF_CONFIG), ResNet-50 through both phases (head, then fine-tuning), one artifact from the chief."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import processes
import pytest
from serving import free_port, realcheck_command

pytestmark = pytest.mark.heavy_children  # two TensorFlow workers of about 1.5 GB each

WORKERS = 2
TRAINING_TIMEOUT_S = 600


def tf_config(ports: list[int], index: int) -> str:
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})


@pytest.fixture(scope="module")
def resnet50_weights(tmp_path_factory):
    """A local weights file stands in for ImageNet's (nothing is downloaded); written in a process of its
    own, so this test process does not keep a ResNet-50 beside the two workers."""
    path = tmp_path_factory.mktemp("weights") / "resnet50_notop.weights.h5"
    script = (
        "import sys, keras\n"
        "keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))"
        ".save_weights(sys.argv[1])\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=300)
    return path


def test_two_workers_train_resnet50_together_and_the_chief_writes_one_artifact(
    folder_dataset, resnet50_weights, tmp_path
):
    ports = [free_port() for _ in range(WORKERS)]
    out = tmp_path / "artifact"
    flags = [
        *("train", "--data", str(folder_dataset), "--out", str(out), "--distribute", "multiworker"),
        *("--backbone", "resnet50", "--weights", str(resnet50_weights), "--training-size", "32"),
        *("--batch-size", "16", "--epochs", "1", "--finetune-epochs", "1", "--patience", "0"),
    ]
    logs = [tmp_path / f"worker-{index}.log" for index in range(WORKERS)]
    workers = []
    try:
        for index, log in enumerate(logs):
            # Few malloc arenas: TensorFlow's many threads otherwise each keep memory they no longer use.
            env = os.environ | {
                "TF_CONFIG": tf_config(ports, index),
                "TF_CPP_MIN_LOG_LEVEL": "2",
                "MALLOC_ARENA_MAX": "2",
            }
            with open(log, "wb") as sink:
                workers.append(
                    processes.spawn(
                        [*realcheck_command(), *flags], stdout=sink, stderr=subprocess.STDOUT, env=env
                    )
                )
        for worker in workers:
            worker.wait(timeout=TRAINING_TIMEOUT_S)
    finally:
        codes = [processes.stop(worker) for worker in workers]
    output = [log.read_text(errors="replace") for log in logs]
    assert codes == [0] * WORKERS, "\n\n".join(output)

    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["backbone"] == "resnet50" and metadata["replicas"] == WORKERS
    history = json.loads((out / "history.json").read_text())
    assert len(history["head"]["loss"]) == 1 and len(history["finetune"]["loss"]) == 1
    assert f"artifact: {out}" in output[0]
    # The other worker trained as one of the two replicas and wrote nothing.
    assert "2 replica(s)" in output[1] and "artifact: written by the chief worker" in output[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact", "worker-0.log", "worker-1.log"]

    images = sorted(str(path) for path in folder_dataset.rglob("*.png"))[:4]
    check = subprocess.run(
        [*realcheck_command(), "check", "--model", str(out), "--json", *images],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    results = json.loads(check.stdout)
    assert len(results) == 4
    assert all(row["model"] == metadata["name"] and 0.0 <= row["score"] <= 1.0 for row in results)
