"""RealCheck beyond one process, on loopback: two `realcheck serve` replicas behind HAProxy (the shipped
`deploy/haproxy.cfg`), sharing PostgreSQL for feedback and Redis for rate limits. Load runs through the
balancer while one replica is killed: the balancer routes around it, every acknowledged report is stored,
errors stay within the requests in flight at the kill, and the rate limit counts across replicas."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import imagegen
import processes
import pytest
import requests
from serving import LiveServer, free_port

from realcheck.server.feedback.store import FeedbackStore

ROOT = Path(__file__).resolve().parent.parent
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy.cfg"
RATE_LIMIT = 300  # a minute per client: above the load below, so only the final probe reaches it
CLIENTS = 6
REQUESTS_PER_CLIENT = 30
KILL_AFTER = 60  # completed requests


def installed(program: str) -> str:
    found = shutil.which(program) or next(
        (str(p) for p in (Path("/usr/sbin") / program, Path("/usr/bin") / program) if p.exists()), None
    )
    if found is None:
        pytest.skip(
            f"{program} is not installed, so the scale-out test is skipped: "
            "apt-get install -y haproxy redis-server (scripts/test.sh does it when run as root)"
        )
    return found


@pytest.fixture
def redis_server():
    from databases import RedisServer

    server = RedisServer(installed("redis-server"))
    try:
        yield server
    finally:
        server.stop()


class Balancer:
    """HAProxy with the shipped configuration, its addresses from the environment."""

    def __init__(self, replicas: list[LiveServer], log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = os.environ | {
            "REALCHECK_LISTEN": f"127.0.0.1:{self.port}",
            **{f"REALCHECK_REPLICA_{n}": f"127.0.0.1:{r.port}" for n, r in enumerate(replicas, 1)},
        }
        self._log = open(log_path, "wb")  # noqa: SIM115  closed in stop()
        self.log_path = log_path
        command = [installed("haproxy"), "-db", "-f", str(HAPROXY_CONFIG)]
        self.process = processes.spawn(command, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text(errors="replace")[-3000:]
            try:
                if requests.get(self.url + "/readyz", timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the balancer passed nothing on: {self.log_path.read_text(errors='replace')}")

    def stop(self) -> None:
        processes.stop(self.process)
        self._log.close()


def feedback_report(number: int) -> dict:
    image = imagegen.image_bytes("real" if number % 2 else "ai", 40, seed=number, fmt="PNG")
    return {
        "sha256": hashlib.sha256(image).hexdigest(),
        "label": "ai" if number % 2 else "real",
        "model": {"name": "realcheck-tiny", "version": "0.0.1-test"},
        "score": 0.5,
        "note": f"report {number}",
        "image_b64": base64.b64encode(image).decode(),
    }


class Load:
    """Clients through the balancer: predictions, with every third request a feedback report."""

    def __init__(self, url: str):
        self.url = url
        self.lock = threading.Lock()
        self.in_flight = 0
        self.completed = 0
        self.outcomes: list[tuple[str, int | str]] = []  # (kind, status or exception name)
        self.acknowledged: set[int] = set()
        self.image = imagegen.image_bytes("real", 48, seed=1, fmt="PNG")

    def client(self, number: int) -> None:
        session = requests.Session()
        for index in range(REQUESTS_PER_CLIENT):
            kind = "feedback" if index % 3 == 2 else "predict"
            with self.lock:
                self.in_flight += 1
            try:
                if kind == "feedback":
                    response = session.post(
                        self.url + "/v1/feedback", json=feedback_report(number * 1000 + index), timeout=30
                    )
                    if response.status_code == 201:
                        with self.lock:
                            self.acknowledged.add(response.json()["report"]["id"])
                else:
                    response = session.post(
                        self.url + "/v1/predict",
                        data=self.image,
                        headers={"Content-Type": "image/png"},
                        timeout=30,
                    )
                outcome: int | str = response.status_code
            except requests.RequestException as error:
                outcome = type(error).__name__
            with self.lock:
                self.in_flight -= 1
                self.completed += 1
                self.outcomes.append((kind, outcome))


def test_two_replicas_behind_haproxy_survive_a_replica_killed_mid_load(
    tiny_artifact, onnx_cache_dir, postgres_cluster, redis_server, tmp_path
):
    database = postgres_cluster.new_database()
    shared = [
        "--feedback-db", database,
        "--rate-limit", str(RATE_LIMIT),
        "--rate-limit-storage", redis_server.url,
        "--trusted-proxies", "1",
        "--threads", "8",
    ]  # fmt: skip
    replicas = [
        LiveServer(tiny_artifact, onnx_cache_dir, tmp_path / f"replica-{n}.log", *shared) for n in (1, 2)
    ]
    balancer = None
    try:
        for replica in replicas:
            replica.wait_ready()
        balancer = Balancer(replicas, tmp_path / "haproxy.log")
        balancer.wait_ready()

        load = Load(balancer.url)
        clients = [threading.Thread(target=load.client, args=(n,)) for n in range(CLIENTS)]
        for thread in clients:
            thread.start()
        while load.completed < KILL_AFTER:
            time.sleep(0.01)
        with load.lock:  # nothing starts or finishes while the replica dies
            in_flight_at_kill = load.in_flight
            replicas[0].process.kill()
        for thread in clients:
            thread.join(timeout=300)

        statuses = [outcome for _, outcome in load.outcomes]
        assert len(statuses) == CLIENTS * REQUESTS_PER_CLIENT
        failed = [o for kind, o in load.outcomes if o not in ({201} if kind == "feedback" else {200})]
        assert len(failed) <= in_flight_at_kill, (failed, in_flight_at_kill)
        assert replicas[1].process.poll() is None

        # Every report the balancer acknowledged is in the shared database.
        store = FeedbackStore(database)
        try:
            stored = {report.id for report in store.iter_reports()}
        finally:
            store.close()
        assert load.acknowledged and load.acknowledged <= stored

        # One count across replicas (Redis): the survivor refuses once the clients' total reaches the limit,
        # although it answered only part of it itself.
        counted = statuses.count(200) + statuses.count(201)
        session = requests.Session()
        while True:
            response = session.get(balancer.url + "/v1/models", timeout=30)
            if response.status_code != 200:
                break
            counted += 1
            assert counted <= RATE_LIMIT, "the limit was not shared: the survivor counted alone"
        assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
        assert counted >= RATE_LIMIT - len(failed)  # the failed ones may or may not have been counted
    finally:
        if balancer is not None:
            balancer.stop()
        for replica in replicas:
            replica.stop()


def test_the_shipped_deployment_files_agree_with_the_server_and_the_balancer():
    import re
    import shlex

    import yaml

    from realcheck.cli import build_parser

    entrypoint = re.search(r"ENTRYPOINT (\[.*\])", (ROOT / "deploy" / "Dockerfile").read_text()).group(1)
    image_args = yaml.safe_load(entrypoint)[1:]  # after the program name
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    manifests = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "realcheck.yaml").read_text()))
    container = manifests[0]["spec"]["template"]["spec"]["containers"][0]
    replicas = [compose["services"][f"replica-{n}"]["command"] for n in (1, 2)] + [container["args"]]
    for extra in replicas:
        args = build_parser().parse_args(image_args + extra)  # every flag exists and parses
        assert args.trusted_proxies == 1 and args.rate_limit_storage.startswith("redis://"), shlex.join(extra)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # The balancer's environment names every address the configuration reads.
    wanted = set(re.findall(r"\$\{(\w+)\}", HAPROXY_CONFIG.read_text()))
    assert wanted == set(compose["services"]["balancer"]["environment"]) == {
        "REALCHECK_LISTEN", "REALCHECK_REPLICA_1", "REALCHECK_REPLICA_2",
    }  # fmt: skip
