"""The browser extension (`extension/`): its manifest, its worker modules under Node, and the real thing in
Chromium against a real server.

Chromium is the system one (`/usr/bin/chromium`, never a Playwright download), headless, with the unpacked
extension loaded; the server is a real `realcheck serve` process with a tiny real model; the "news page" is
a local fixture (tests/newspage.py) served on 127.0.0.1 and, as a second site, on localhost; as an image host
without access (a news site's CDN) it is also reached as images.fixture.test, a name Chromium is told to resolve
to 127.0.0.1. Nothing leaves loopback. Waits have generous bounds for a slow shared machine; no test asserts a duration. The timings of
the news page are measured and written to test-artifacts/extension-timings.json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import firefox
import newspage
import numpy as np
import provenancegen
import pytest
from serving import LiveServer, free_port

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = ROOT / "extension"
ARTEFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
NODE = shutil.which("node")
WAIT_S = 120.0  # an upper bound for a slow shared machine, not a performance assertion
VIEWPORT = {"width": 1280, "height": 900}
CDN_HOST = "images.fixture.test"  # the news site's image host: no access is granted for it
CHROMIUM_ARGS = [
    f"--disable-extensions-except={EXTENSION}",
    f"--load-extension={EXTENSION}",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP *.fixture.test 127.0.0.1",
]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium missing: install it with `apt-get install -y chromium`"
)

# In the page's own world: remember when each badge first showed each state, for timings and for checking
# that a right-click check said "checking" before its verdict. The overlay's shadow root is open.
RECORDER = """
(() => {
  const log = (window.__realcheckLog = { events: [] });
  const watched = new WeakSet();
  const record = (badge) => {
    if (!badge.classList || !badge.classList.contains("badge")) return;
    log.events.push({ t: performance.now(), state: badge.dataset.state || "", shown: !badge.hidden,
                      id: badge.__id || (badge.__id = Math.random().toString(36).slice(2)) });
  };
  new MutationObserver(() => {
    const host = document.querySelector("realcheck-overlay");
    if (!host || !host.shadowRoot || watched.has(host)) return;
    watched.add(host);
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.type === "attributes") record(r.target);
        else r.addedNodes.forEach(record);
      }
    }).observe(host.shadowRoot, { subtree: true, childList: true, attributes: true,
                                  attributeFilter: ["data-state", "hidden"] });
  }).observe(document, { childList: true, subtree: true });
})();
"""

# Every visible badge, with the element it sits on: the one whose visible top-left corner is 6 px from it.
BADGES = """
(ids) => {
  const host = document.querySelector("realcheck-overlay");
  if (!host) return [];
  const rects = ids.map((id) => [id, document.getElementById(id)?.getBoundingClientRect()]);
  return [...host.shadowRoot.querySelectorAll(".badge")].filter((b) => !b.hidden).map((badge) => {
    const m = /translate\\((-?[\\d.]+)px, (-?[\\d.]+)px\\)/.exec(badge.style.transform) || [0, -1e9, -1e9];
    const x = Number(m[1]), y = Number(m[2]);
    const owners = rects.filter(([id, r]) => r && r.width > 0 &&
      Math.abs(Math.max(r.left, 0) + 6 - x) <= 1 && Math.abs(Math.max(r.top, 0) + 6 - y) <= 1).map(([id]) => id);
    return { owners, x, y, state: badge.dataset.state, verdict: badge.dataset.verdict || null,
             toast: badge.classList.contains("toast"), expanded: badge.classList.contains("expanded"),
             label: badge.querySelector(".label")?.textContent || "", text: badge.textContent,
             aria: badge.getAttribute("aria-label") || "", role: badge.getAttribute("role") };
  });
}
"""

NOTICES = """
() => {
  const host = document.querySelector("realcheck-overlay");
  return host ? [...host.shadowRoot.querySelectorAll(".notice")].map((n) => n.textContent) : [];
}
"""

VEILS = """
() => {
  const host = document.querySelector("realcheck-overlay");
  return host ? [...host.shadowRoot.querySelectorAll(".veil")].filter((v) => !v.hidden)
    .map((v) => v.getBoundingClientRect().toJSON()) : [];
}
"""

SCROLL_BELOW = "document.getElementById('below').scrollIntoView({block: 'center'})"
ALL_IDS = [*newspage.TOP_BADGED, *newspage.BELOW_BADGED, *newspage.NOT_BADGED]


def metrics(server: LiveServer) -> dict[str, float]:
    """Images scored, undecodable images of multi-image requests, predict requests answered (and refused with
    a 400), from the server's Prometheus counters."""
    text = server.get_text("/metrics")
    images = re.search(r"^realcheck_images_total ([0-9.e+]+)$", text, re.MULTILINE)
    invalid = re.search(r"^realcheck_invalid_images_total ([0-9.e+]+)$", text, re.MULTILINE)
    requests = re.findall(
        r'^realcheck_http_requests_total\{([^}]*endpoint="/v1/predict"[^}]*)\} ([0-9.e+]+)$', text, re.M
    )
    model = re.search(r"^realcheck_batch_inference_seconds_sum ([0-9.e+-]+)$", text, re.MULTILINE)
    return {
        "images": float(images.group(1)) if images else 0.0,
        "invalid_images": float(invalid.group(1)) if invalid else 0.0,
        "requests": sum(float(value) for _, value in requests),
        "refused": sum(float(value) for labels, value in requests if 'status="400"' in labels),
        "model_s": float(model.group(1)) if model else 0.0,
    }


def delta(after: dict, before: dict) -> dict:
    return {key: after[key] - before[key] for key in after}


# ---- the model: exact scores, so every verdict on the page is known in advance ---------------------------


@dataclass
class ExtensionModel:
    """Two versions of the tiny model; v1's decision rule is chosen so the page shows all three verdicts."""

    v1: Path
    v2: Path
    scores: dict[str, float]
    threshold: float
    band: tuple[float, float]

    def verdict(self, path: str) -> str:
        name = Path(path).name
        score = self.scores["plain.jpg" if name == "copy-of-plain.jpg" else name]
        low, high = self.band
        if low <= score <= high and low < high:
            return "uncertain"
        return "ai" if score >= self.threshold else "real"

    def score(self, path: str) -> float:
        name = Path(path).name
        return self.scores["plain.jpg" if name == "copy-of-plain.jpg" else name]


@pytest.fixture(scope="module")
def news_site(tmp_path_factory):
    """The news page on a local HTTP server: (server, {relative path: bytes})."""
    root = tmp_path_factory.mktemp("news-site")
    files = newspage.write_site(root)
    server = newspage.SiteServer(root)
    yield server, files
    server.close()


@pytest.fixture(scope="module")
def extension_model(tiny_artifact, onnx_cache_dir, tmp_path_factory, news_site) -> ExtensionModel:
    from realcheck.model.artifacts.artifact import read_metadata
    from realcheck.model.scoring.inference import Detector
    from realcheck.server.backends import load_runtime

    _, files = news_site
    metadata = read_metadata(tiny_artifact)
    # The server's own runtime and decode path: scores bit for bit what the server will answer.
    detector = Detector(load_runtime(tiny_artifact, metadata, "onnx", onnx_cache_dir), metadata)
    names = newspage.TOP_DISTINCT + newspage.BELOW_DISTINCT
    batch = np.stack([detector.pixels(files[f"img/{name}"]) for name in names])
    scores = dict(zip(names, (float(s) for s in detector.scores(batch))))
    assert len(set(scores.values())) == len(scores), "fixture images must score differently"
    # Among the images in view at load: two real, one uncertain, three AI (an untrained model's scores sit
    # close together, so the rule is placed between them).
    ranked = sorted(scores[name] for name in newspage.TOP_DISTINCT)
    band = ((ranked[1] + ranked[2]) / 2, (ranked[2] + ranked[3]) / 2)
    threshold = band[1]

    def variant(version: str, rule: dict) -> Path:
        folder = tmp_path_factory.mktemp(f"model-{version}") / "artifact"
        folder.mkdir()
        for item in tiny_artifact.iterdir():
            if item.name != "metadata.json":
                # Same model.keras (a link): the ONNX export cached under its hash serves every version.
                (folder / item.name).symlink_to(item)
        (folder / "metadata.json").write_text(json.dumps(metadata | {"version": version} | rule))
        return folder

    v1 = variant("ext-1", {"threshold": threshold, "uncertainty_band": list(band)})
    # v2 flags everything: after an upgrade, badges visibly change.
    v2 = variant("ext-2", {"threshold": min(scores.values()) - 0.01, "uncertainty_band": [0.0, 0.0]})
    return ExtensionModel(v1, v2, scores, threshold, band)


@pytest.fixture(scope="module")
def ext_server(tmp_path_factory, extension_model, onnx_cache_dir):
    feedback_db = tmp_path_factory.mktemp("ext-feedback") / "feedback.sqlite3"
    server = LiveServer(
        extension_model.v1,
        onnx_cache_dir,
        tmp_path_factory.mktemp("ext-server") / "serve.log",
        "--threads",
        "4",
        "--max-batch-size",
        "8",
        "--feedback-db",
        str(feedback_db),
    )
    server.feedback_db = feedback_db
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


# ---- the browser ------------------------------------------------------------------------------------


class Browser:
    """Chromium with the unpacked extension, its service worker at hand."""

    def __init__(self, browser_type, profile: Path):
        installing = not profile.exists()
        self.context = launch_with_extension(browser_type, profile)
        self.context.set_default_timeout(WAIT_S * 1000)
        workers = self.context.service_workers
        self.worker = workers[0] if workers else self.context.wait_for_event("serviceworker")
        self.extension_id = self.worker.url.split("/")[2]
        self.worker.evaluate("realcheck.state.then(() => true)")  # the worker finished starting
        if installing:
            # A first install opens the welcome page in a tab (one Playwright does not attach to, being opened
            # while it connects): close it, so tests open their own pages, the welcome page included. Found as
            # an extension context: without the "tabs" permission, Chromium 150 gives tabs.query no URL of the
            # extension's own pages.
            self.worker.evaluate(
                """async () => {
                     const welcome = chrome.runtime.getURL("welcome/welcome.html");
                     for (let i = 0; i < 1200; i += 1) {
                       const pages = await chrome.runtime.getContexts({ contextTypes: ["TAB"], documentUrls: [welcome] });
                       if (pages.length) return chrome.tabs.remove(pages.map((page) => page.tabId));
                       await new Promise((resolve) => setTimeout(resolve, 50));
                     }
                     throw new Error("the welcome page did not open on install");
                   }"""
            )

    def configure(self, **changes) -> dict:
        """Change settings as the options page does; wait until the content script registration follows."""
        settings = self.worker.evaluate("(changes) => realcheck.saveSettings(changes)", changes)
        wanted = sorted({"127.0.0.1", "localhost"} & set(settings["sites"])) if settings["autoMode"] else []
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            registered = self.worker.evaluate(
                "async () => (await chrome.scripting.getRegisteredContentScripts()).flatMap((s) => s.matches)"
            )
            if all(f"http://{host}/*" in registered for host in wanted):
                return settings
            time.sleep(0.1)
        raise AssertionError(f"content script not registered for {wanted}")

    def settings(self) -> dict:
        return self.worker.evaluate("realcheck.getSettings()")

    def page(self, url: str | None = None):
        page = self.context.new_page()
        page.add_init_script(RECORDER)
        if url:
            page.goto(url)
        return page

    def tab_id(self, url: str) -> int:
        """The tab showing `url`, a page of a site the extension has host access to (the test sites): only
        for those does tabs.query give the URL, the extension having no "tabs" permission."""
        tabs = self.worker.evaluate("async () => (await chrome.tabs.query({})).map((t) => [t.id, t.url])")
        showing = [tab_id for tab_id, tab_url in tabs if tab_url == url]
        assert len(showing) == 1, f"not one tab shows {url}: {tabs}"
        return showing[0]

    @contextmanager
    def restarted_worker(self, page):
        """Stop the service worker, as the browser does when it is idle (through `page`'s DevTools session);
        the block wakes a new one (an extension page that asks it something, a content script reconnecting)."""
        self.worker.evaluate("() => { globalThis.__stopped = true; }")
        session = self.context.new_cdp_session(page)
        states: list[str] = []
        session.on(
            "ServiceWorker.workerVersionUpdated",
            lambda event: states.extend(
                v["runningStatus"] for v in event["versions"] if self.extension_id in v["scriptURL"]
            ),
        )
        session.send("ServiceWorker.enable")
        session.send("ServiceWorker.stopAllWorkers")

        def wait_until(done, what: str) -> None:
            deadline = time.monotonic() + WAIT_S
            while not done():
                assert time.monotonic() < deadline, what
                page.wait_for_timeout(100)  # lets Playwright take in the DevTools events meanwhile

        wait_until(lambda: "stopped" in states, "the service worker did not stop")
        yield
        wait_until(lambda: states[-1] == "running", "no service worker started again")
        session.detach()
        # Playwright keeps the worker's handle: it now reaches the new worker.
        self.worker.evaluate("realcheck.state.then(() => true)")
        assert self.worker.evaluate("globalThis.__stopped") is None, "the worker was not restarted"

    def extension_page(self, path: str):
        page = self.context.new_page()
        page.goto(f"chrome-extension://{self.extension_id}/{path}")
        return page

    def right_click(self, page_url: str, image_url: str) -> None:
        """The context menu's "Check image with RealCheck", dispatched as the browser would."""
        tab_id = self.tab_id(page_url)
        self.worker.evaluate(
            """([tabId, srcUrl, pageUrl]) => chrome.contextMenus.onClicked.dispatch(
                 {menuItemId: "realcheck-check-image", srcUrl, pageUrl, frameId: 0, editable: false},
                 {id: tabId, url: pageUrl, index: 0, windowId: 1, active: true})""",
            [tab_id, image_url, page_url],
        )


def launch_with_extension(browser_type, profile: Path):
    """A Chromium profile with the unpacked extension (pytest-playwright's browser type; the system binary)."""
    return browser_type.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), headless=True, viewport=VIEWPORT, args=CHROMIUM_ARGS
    )


@contextmanager
def launched(browser_type, profile: Path):
    browser = Browser(browser_type, profile)
    try:
        yield browser
    finally:
        browser.context.close()


def badges(page, ids=ALL_IDS) -> list[dict]:
    return page.evaluate(BADGES, list(ids))


def wait_for_badges(page, ids, state: str = "done", where=lambda badge: True) -> dict[str, dict]:
    """Wait until each of `ids` carries a visible badge in `state` (and `where`); returns them by id."""
    deadline = time.monotonic() + WAIT_S
    found: dict[str, dict] = {}
    owners = sorted(set(ALL_IDS) | set(ids))
    while time.monotonic() < deadline:
        found = {}
        for badge in badges(page, owners):
            for owner in badge["owners"]:
                if badge["state"] == state and where(badge):
                    found[owner] = badge
        if set(ids) <= set(found):
            return found
        time.sleep(0.1)
    missing = sorted(set(ids) - set(found))
    raise AssertionError(f"badges never reached {state!r} on {missing}: {badges(page, owners)}")


def screenshot(page, name: str) -> None:
    ARTEFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / name))


def check_verdicts(
    found: dict[str, dict], mapping: dict[str, str], model: ExtensionModel, version: str
) -> None:
    for element_id, path in mapping.items():
        badge = found[element_id]
        expected = model.verdict(path)
        percent = f"{round(model.score(path) * 100)}%"
        assert badge["verdict"] == expected, (element_id, badge)
        assert percent in badge["label"], (element_id, badge["label"])
        # Screen readers get a sentence: what, verdict, score and the model that said so.
        assert badge["role"] == "img" and badge["aria"].startswith("RealCheck: "), badge
        assert percent in badge["aria"] and f"realcheck-tiny {version}" in badge["aria"], badge["aria"]


# ---- static checks and worker modules ---------------------------------------------------------------


def test_manifest_asks_for_little_and_loads_in_chromium_and_firefox():
    manifest = json.loads((EXTENSION / "manifest.json").read_text())
    assert manifest["manifest_version"] == 3
    assert sorted(manifest["permissions"]) == ["activeTab", "contextMenus", "scripting", "storage"]
    # Install-time host access: the default server (any port) only; sites and images are asked for at run time.
    assert manifest["host_permissions"] == ["http://127.0.0.1/*", "http://localhost/*"]
    assert manifest["optional_host_permissions"] == ["*://*/*"]
    assert "content_scripts" not in manifest  # registered per site at run time
    background = manifest["background"]
    assert background["service_worker"] == background["scripts"][0] and background["type"] == "module"
    assert manifest["browser_specific_settings"]["gecko"]["id"]
    files = [
        background["service_worker"],
        manifest["action"]["default_popup"],
        manifest["options_ui"]["page"],
        *manifest["icons"].values(),
    ]
    # The first-run page the worker opens on install.
    worker = (EXTENSION / "background" / "service-worker.js").read_text()
    files += re.findall(r'"(welcome/[\w-]+\.html)"', worker)
    assert "welcome/welcome.html" in files
    for relative in files:
        assert (EXTENSION / relative).is_file(), relative
    parts = (EXTENSION / "content" / "parts.js").read_text()
    scripts = re.findall(r'"((?:content|shared)/[\w-]+\.js)"', parts)
    assert "content/main.js" in scripts and "shared/messages.js" in scripts
    for script in scripts:
        assert (EXTENSION / script).is_file(), script


def test_worker_modules_under_node(tmp_path):
    """Queue, cache, client, image and settings modules, with real encoder output for the header parsers."""
    from PIL import Image

    # scripts/test.sh installs Node.js (it lints the extension with it): missing, it is a failure, not a skip.
    assert NODE is not None, "node is not installed: apt-get install nodejs (scripts/test.sh does)"

    picture = newspage.picture("ai", 5, (321, 123))
    for fmt, suffix in [("JPEG", "jpg"), ("PNG", "png"), ("GIF", "gif"), ("WEBP", "webp"), ("BMP", "bmp")]:
        (tmp_path / f"sample.{suffix}").write_bytes(newspage.encode(picture, fmt))
    picture.save(tmp_path / "sample-lossless.webp", format="WEBP", lossless=True)
    picture.save(tmp_path / "sample-progressive.jpg", format="JPEG", progressive=True)
    Image.new("RGBA", (321, 123)).save(tmp_path / "sample-alpha.webp", format="WEBP")
    (tmp_path / "sample.tiff").write_bytes(newspage.encode(picture, "TIFF"))
    result = subprocess.run(
        [NODE, "--test", str(ROOT / "tests" / "js")],
        env=os.environ | {"REALCHECK_SAMPLES": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    # Each JS test counts: a runner that found none (or fewer) must not pass as one green test.
    passed = re.search(r"^# pass (\d+)$", result.stdout, re.MULTILINE)
    assert passed and int(passed.group(1)) >= 52, result.stdout[-3000:]


# ---- in Chromium ------------------------------------------------------------------------------------


@needs_chromium
def test_news_page_badges_exactly_the_right_images_and_sends_each_image_once(
    browser_type, news_site, ext_server, extension_model, tmp_path
):
    site, _ = news_site
    site.hits.clear()
    with launched(browser_type, tmp_path / "profile") as browser:
        browser.configure(serverUrl=ext_server.url, sites=["127.0.0.1"])
        before = metrics(ext_server)
        page = browser.page(site.url())

        found = wait_for_badges(page, newspage.TOP_BADGED)
        time.sleep(1.5)  # anything extra (a tiny image, a duplicate) would have arrived by now
        shown = badges(page)
        assert sorted(owner for badge in shown for owner in badge["owners"]) == sorted(newspage.TOP_BADGED)
        assert all(len(badge["owners"]) == 1 for badge in shown), shown
        check_verdicts(found, newspage.TOP_BADGED, extension_model, "ext-1")
        assert {badge["verdict"] for badge in found.values()} == {"ai", "real", "uncertain"}
        # Pixels alone never make a badge say "Real": below the band it says only that no AI signs were found.
        for badge in found.values():
            assert (
                "real" not in badge["label"].lower()
                and "likely a real photograph" not in badge["aria"].lower()
            )
        top = delta(metrics(ext_server), before)
        # One image per distinct picture: duplicates (same URL, same bytes) and off-screen images cost nothing.
        assert top["images"] == len(newspage.TOP_DISTINCT), top
        # Files the browser did not choose (srcset, <picture>) or that are not candidates were never downloaded
        # by the extension (the page itself loads some of them once).
        for name in newspage.NEVER_SENT:
            assert site.hits[f"/img/{name}"] <= 1, (name, dict(site.hits))
        assert site.hits["/img/lazy-js.jpg"] == 0

        events = page.evaluate("window.__realcheckLog.events")
        done = {}
        for event in events:
            if event["state"] == "done" and event["shown"]:
                done.setdefault(event["id"], event["t"])
        assert len(done) == len(newspage.TOP_BADGED)
        # Milliseconds since navigation started, like the page's load event.
        loaded = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
        timings = {
            "load_event_ms": round(loaded),
            "first_badge_ms": round(min(done.values())),
            "last_visible_badge_ms": round(max(done.values())),
            "visible_badges": len(newspage.TOP_BADGED),
            "server_images": top["images"],
            "server_requests": top["requests"],
            "model_time_ms": round(top["model_s"] * 1000),
        }
        screenshot(page, "extension-news-page.png")

        # Badges follow their images when the layout moves (here: a banner pushes everything down).
        page.evaluate(
            """() => { const banner = document.createElement("div"); banner.style.height = "130px";
                       banner.textContent = "Breaking news"; document.querySelector("main").prepend(banner); }"""
        )
        wait_for_badges(page, newspage.TOP_BADGED)

        # Blur flagged images: a veil over each AI image, clicking one shows that image again.
        browser.configure(blurFlagged=True)
        flagged = [i for i, path in newspage.TOP_BADGED.items() if extension_model.verdict(path) == "ai"]
        page.wait_for_function(f"() => ({VEILS})().length === {len(flagged)}")
        veils = page.evaluate(VEILS)
        rects = page.evaluate(
            "(ids) => ids.map((id) => document.getElementById(id).getBoundingClientRect().toJSON())", flagged
        )
        assert sorted((round(v["x"]), round(v["y"])) for v in veils) == sorted(
            (round(r["x"]), round(r["y"])) for r in rects
        )
        screenshot(page, "extension-news-page-blurred.png")
        page.mouse.click(veils[0]["x"] + 40, veils[0]["y"] + 40)
        page.wait_for_function(f"() => ({VEILS})().length === {len(flagged) - 1}")

        # Compact badges: the verdict word only.
        browser.configure(blurFlagged=False, badgeStyle="compact")
        compact = wait_for_badges(page, newspage.TOP_BADGED, where=lambda b: "%" not in b["label"])
        assert {b["label"] for b in compact.values()} == {"AI", "No AI signs", "?"}
        browser.configure(badgeStyle="full")

        # Far below: nothing was sent for those images until they came near the viewport.
        page.evaluate(SCROLL_BELOW)
        below = wait_for_badges(page, newspage.BELOW_BADGED)
        check_verdicts(below, newspage.BELOW_BADGED, extension_model, "ext-1")
        total = delta(metrics(ext_server), before)
        assert total["images"] == len(newspage.TOP_DISTINCT) + len(newspage.BELOW_DISTINCT), total
        screenshot(page, "extension-news-page-below.png")

        # Under the sticky header (56 px), a badge moves down to the part of its image that shows.
        page.evaluate(
            """() => { const r = document.getElementById("lazy-native").getBoundingClientRect();
                       window.scrollBy(0, r.top - 30); }"""
        )
        page.wait_for_function(
            f"""() => ({BADGES})(["lazy-native"]).some((b) => b.state === "done" && b.y === 62 &&
                   Math.abs(b.x - (document.getElementById("lazy-native").getBoundingClientRect().left + 6)) <= 1)"""
        )

    timings["total_server_images"] = total["images"]
    timings["total_server_requests"] = total["requests"]
    (ARTEFACTS / "extension-timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    print(f"\nnews page: {json.dumps(timings)}")


@needs_chromium
def test_right_click_check_shows_waiting_then_the_verdict_and_failures(
    browser_type, news_site, ext_server, extension_model, tmp_path
):
    site, _ = news_site
    page_url = site.url(host="localhost")
    with launched(browser_type, tmp_path / "profile") as browser:
        browser.configure(serverUrl=ext_server.url, sites=["127.0.0.1"])
        before = metrics(ext_server)
        page = browser.page(page_url)
        page.wait_for_load_state("load")
        time.sleep(1.5)
        # Checking is off on this site: nothing is drawn and nothing is sent.
        assert badges(page) == []
        assert delta(metrics(ext_server), before)["images"] == 0

        browser.right_click(page_url, site.url("img/linked.png", host="localhost"))
        found = wait_for_badges(page, ["linked"])
        badge = found["linked"]
        path = newspage.TOP_BADGED["linked"]
        expected = extension_model.verdict(path)
        # Folded, with its full label: the details open on a click, and never unasked over the site's header.
        assert badge["verdict"] == expected and not badge["expanded"]
        # On the image: score, verdict and the model version, all visible.
        assert f"{round(extension_model.score(path) * 100)}%" in badge["text"]
        sentence = {"ai": "likely ai-generated", "real": "no signs of ai generation found"}.get(
            expected, "uncertain"
        )
        assert sentence in badge["text"].lower()
        assert "realcheck-tiny ext-1" in badge["text"]
        states = [e["state"] for e in page.evaluate("window.__realcheckLog.events")]
        assert "pending" in states and states.index("pending") < states.index("done")
        assert delta(metrics(ext_server), before)["images"] == 1
        assert [b["owners"] for b in badges(page)] == [["linked"]]  # only the image asked about

        # An image the server cannot decode: a failed state on the image, with the server's reason.
        browser.right_click(page_url, site.url("img/corrupt.jpg", host="localhost"))
        failed = wait_for_badges(page, ["broken"], state="failed")["broken"]
        assert failed["label"] == "Check failed" and "could not check" in failed["text"]
        # One details panel open at a time.
        overlay_badges = page.locator("realcheck-overlay .badge")
        overlay_badges.nth(page.evaluate(BADGE_INDEX, "linked")).click(position={"x": 8, "y": 8})
        wait_for_badges(page, ["linked"], where=lambda b: b["expanded"])
        overlay_badges.nth(page.evaluate(BADGE_INDEX, "broken")).click(position={"x": 8, "y": 8})
        wait_for_badges(page, ["broken"], state="failed", where=lambda b: b["expanded"])
        assert [b["owners"] for b in badges(page) if b["expanded"]] == [["broken"]]
        # A 16-px icon is too small to judge, even when asked: nothing is sent.
        sent = metrics(ext_server)["images"]
        browser.right_click(page_url, site.url("img/icon.png", host="localhost"))
        page.wait_for_function(
            f"() => ({BADGES})([]).some((b) => b.toast && b.state === 'skipped' && b.label === 'Too small to judge')"
        )
        assert metrics(ext_server)["images"] == sent
        # An image that cannot be downloaded and is not on the page: the answer comes as a panel.
        browser.right_click(page_url, site.url("img/missing.jpg", host="localhost"))
        page.wait_for_function(
            f"() => ({BADGES})([]).some((b) => b.toast && b.state === 'failed' && b.text.includes('HTTP 404'))"
        )
        screenshot(page, "extension-right-click.png")


class RefusingServer:
    """Answers every request with 503 and Retry-After: 1, counting them (a server that is up but refusing)."""

    def __init__(self, port: int):
        self.count = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def refuse(self):
                outer.count += 1
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                body = b'{"error": {"code": "overloaded", "message": "busy"}}'
                self.send_response(503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Retry-After", "1")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_OPTIONS = refuse

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.skipif(
    firefox.FIREFOX is None,
    reason="Firefox is missing: install it with `apt-get install -y firefox-esr` (scripts/test.sh does as root)",
)
def test_in_firefox_the_same_extension_badges_a_news_page_and_checks_on_right_click(
    news_site, ext_server, extension_model, tmp_path
):
    site, _ = news_site
    with firefox.launched(EXTENSION, tmp_path / "firefox-profile", tmp_path / "firefox.log") as browser:
        browser.configure(WAIT_S, serverUrl=ext_server.url, sites=["127.0.0.1"])
        # Checking is off on the second site: nothing is drawn until the user asks about one image.
        browser.open(site.url(host="localhost"))
        time.sleep(1.5)
        assert badges(browser) == []
        before = metrics(ext_server)
        browser.right_click_check("linked")
        badge = wait_for_badges(browser, ["linked"])["linked"]
        path = newspage.TOP_BADGED["linked"]
        assert badge["verdict"] == extension_model.verdict(path)
        assert f"{round(extension_model.score(path) * 100)}%" in badge["text"]
        assert "realcheck-tiny ext-1" in badge["text"]
        assert [b["owners"] for b in badges(browser)] == [["linked"]]
        assert delta(metrics(ext_server), before)["images"] == 1

        # On the site where checking is on, every candidate image gets its badge, as in Chromium.
        browser.open(site.url())
        found = wait_for_badges(browser, newspage.TOP_BADGED)
        check_verdicts(found, newspage.TOP_BADGED, extension_model, "ext-1")
        assert {badge["verdict"] for badge in found.values()} == {"ai", "real", "uncertain"}


@needs_chromium
def test_server_down_gives_unavailable_then_recovery_and_a_new_model_rechecks(
    browser_type, news_site, extension_model, onnx_cache_dir, tmp_path
):
    site, _ = news_site
    port = free_port()
    server = LiveServer(extension_model.v1, onnx_cache_dir, tmp_path / "v1.log", "--threads", "4", port=port)
    try:
        server.wait_ready()
        with launched(browser_type, tmp_path / "profile") as browser:
            browser.configure(serverUrl=server.url, sites=["127.0.0.1"])
            page = browser.page(site.url())
            wait_for_badges(page, newspage.TOP_BADGED)
            server.stop()

            # Verdicts already known come from the extension's cache, server or not.
            page.reload()
            wait_for_badges(page, newspage.TOP_BADGED)
            # New images while the server is down: one notice for the page and a mark on the toolbar button,
            # not a grey pill on every photo.
            page.evaluate(SCROLL_BELOW)
            page.wait_for_function(f"() => ({NOTICES})().some((text) => text.includes('realcheck serve'))")
            assert len(page.evaluate(NOTICES)) == 1
            assert not [b for b in badges(page) if b["state"] == "unavailable"]
            assert browser.worker.evaluate("chrome.action.getBadgeText({})") == "off"
            screenshot(page, "extension-server-unavailable.png")

            # A server that answers 503: retried with backoff, a probe at a time; no storm.
            refusing = RefusingServer(port)
            time.sleep(6)
            refusing.close()
            assert refusing.count <= 5, refusing.count

            # The server comes back with a new model version: waiting images get verdicts, and every
            # cached verdict of the old model is checked again.
            server = LiveServer(
                extension_model.v2, onnx_cache_dir, tmp_path / "v2.log", "--threads", "4", port=port
            )
            server.wait_ready()
            below = wait_for_badges(page, newspage.BELOW_BADGED, where=lambda b: "ext-2" in b["aria"])
            assert {b["verdict"] for b in below.values()} == {"ai"}
            assert (
                page.evaluate(NOTICES) == []
                and browser.worker.evaluate("chrome.action.getBadgeText({})") == ""
            )
            page.evaluate("window.scrollTo(0, 0)")
            wait_for_badges(page, newspage.TOP_BADGED, where=lambda b: "ext-2" in b["aria"])
            images = metrics(server)["images"]
            assert images == len(newspage.TOP_DISTINCT) + len(newspage.BELOW_DISTINCT), images
    finally:
        server.stop()


@needs_chromium
def test_options_persist_across_a_restart_and_test_connection_shows_the_model_version(
    browser_type, ext_server, tmp_path
):
    profile = tmp_path / "profile"
    with launched(browser_type, profile) as browser:
        options = browser.extension_page("options/options.html")
        options.wait_for_selector("body[data-ready]")
        assert options.input_value("#serverUrl") == "http://127.0.0.1:8000"
        assert options.is_checked("#autoMode") and "nytimes.com" in options.input_value("#sites")
        assert "sends images only to the server set above" in options.inner_text("#privacy-statement")

        options.fill("#serverUrl", f"http://127.0.0.1:{free_port()}")
        options.click("#test-connection")
        options.wait_for_selector("#connection-status[data-ok='false']")
        assert "Cannot connect" in options.inner_text("#connection-status")

        options.fill("#serverUrl", ext_server.url + "/")
        options.fill("#apiKey", "secret-key")
        options.click("#test-connection")
        options.wait_for_selector("#connection-status[data-version='ext-1']")
        assert "model realcheck-tiny version ext-1 (ready" in options.inner_text("#connection-status")

        options.fill("#sites", "example.org\nhttps://www.Example.com/news\n127.0.0.1\nexample.org")
        options.uncheck("#autoMode")
        options.check("input[name=badgeStyle][value=compact]")
        options.check("#blurFlagged")
        options.click("#save")
        options.wait_for_selector("#save-status[data-ok='true']")
        options.screenshot(path=str(ARTEFACTS / "extension-options.png"), full_page=True)
        assert options.input_value("#sites") == "example.org\nexample.com\n127.0.0.1"
        # Sites outside the install-time permissions need the user's grant; the page says which.
        note = options.inner_text("#access-note")
        assert "2 of these sites" in note and "example.com" in note and "127.0.0.1" not in note

    with launched(browser_type, profile) as browser:
        expected = {
            "serverUrl": ext_server.url,
            "apiKey": "secret-key",
            "autoMode": False,
            "sites": ["example.org", "example.com", "127.0.0.1"],
            "badgeStyle": "compact",
            "blurFlagged": True,
        }
        assert browser.settings() == expected
        options = browser.extension_page("options/options.html")
        options.wait_for_selector("body[data-ready]")
        assert options.input_value("#serverUrl") == ext_server.url
        assert options.input_value("#apiKey") == "secret-key"
        assert not options.is_checked("#autoMode")
        assert options.is_checked("input[name=badgeStyle][value=compact]") and options.is_checked(
            "#blurFlagged"
        )


@needs_chromium
def test_the_popup_switches_automatic_badges_for_a_site(browser_type, news_site, ext_server, tmp_path):
    site, _ = news_site
    page_url = site.url(host="localhost")
    with launched(browser_type, tmp_path / "profile") as browser:
        browser.configure(serverUrl=ext_server.url, sites=["127.0.0.1"])
        page = browser.page(page_url)
        page.wait_for_load_state("load")
        popup = browser.extension_page(f"popup/popup.html?tabId={browser.tab_id(page_url)}")
        wait_in(popup, "document.getElementById('host').textContent === 'localhost'")
        assert not popup.is_checked("#site-toggle")
        assert badges(page) == []

        popup.click("#site-toggle")  # on: the page gets badges now, without a reload
        wait_for_badges(page, newspage.TOP_BADGED)
        wait_in(popup, "document.getElementById('site-toggle').checked")
        # How good the model is, in the words the server derives from the model's metadata.
        statement = json.loads(urllib.request.urlopen(f"{ext_server.url}/v1/models").read())["models"][0][
            "accuracy_statement"
        ]
        wait_in(popup, "document.getElementById('accuracy').textContent.length > 0")
        assert popup.inner_text("#accuracy") == statement and "hint, not proof" in statement
        popup.set_viewport_size({"width": 360, "height": 440})
        screenshot(popup, "extension-popup.png")
        assert browser.settings()["sites"] == ["127.0.0.1", "localhost"]
        page.reload()
        wait_for_badges(page, newspage.TOP_BADGED)  # and on its next load

        popup.reload()
        wait_in(popup, "document.getElementById('site-toggle').checked")
        popup.click("#site-toggle")  # off: the badges go
        page.wait_for_function(f"() => ({BADGES})([]).length === 0")
        assert browser.settings()["sites"] == ["127.0.0.1"]


# The browser's permission prompt cannot be answered in headless Chromium: where a test must see what a button
# asks for, the page's permissions.request is replaced by one that records the request and answers for the
# user (true: "Allow", which changes no real grant; false: "Deny").
def wait_in(page, expression: str, timeout: float = 30.0) -> None:
    """Wait until `expression` is true on an extension page, polled from here: the page's CSP refuses the
    in-page eval that wait_for_function falls back on while it polls."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        time.sleep(0.05)


RECORD_PERMISSION_REQUESTS = """(answer) => {
  window.__asked = [];
  chrome.permissions.request = async (permissions) => (window.__asked.push(permissions), answer);
}"""


@needs_chromium
def test_install_opens_a_welcome_page_that_says_what_is_sent_and_asks_once_for_sites_and_image_hosts(
    browser_type, news_site, ext_server, tmp_path
):
    # Opening on install is checked by every launch of a fresh profile (Browser waits for it, then closes it).
    with launched(browser_type, tmp_path / "profile") as browser:
        welcome = browser.extension_page("welcome/welcome.html")
        welcome.wait_for_selector("body[data-ready]")
        sent = welcome.inner_text("#what-is-sent")
        assert "http://127.0.0.1:8000" in sent and "a server on this computer" in sent
        assert "the image bytes under a generic name" in sent and "nothing about the page" in sent
        assert "Not sent: the address of the page or of the image, your cookies" in sent
        # It asks the server live: none answers at the default address in the tests.
        status = welcome.inner_text("#server-status")
        assert (
            "No RealCheck server answers at http://127.0.0.1:8000" in status and "realcheck serve" in status
        )
        screenshot(welcome, "extension-welcome.png")

        # One request covers every listed news site and the hosts their pictures come from.
        welcome.evaluate(RECORD_PERMISSION_REQUESTS, False)
        welcome.click("#grant-news")
        welcome.wait_for_selector("#grant-status[data-ok='false']")
        asked = welcome.evaluate("window.__asked")
        assert len(asked) == 1, asked
        origins = asked[0]["origins"]
        assert len(origins) == len(set(origins))
        for site in browser.settings()["sites"]:
            assert f"*://{site}/*" in origins and f"*://*.{site}/*" in origins, site
        for image_host in ["static01.nyt.com", "ichef.bbci.co.uk", "i.guim.co.uk", "images.wsj.net"]:
            assert f"*://{image_host}/*" in origins, image_host
        assert "Nothing was allowed" in welcome.inner_text("#grant-status")
        assert not any(origin.startswith("*://*/") for origin in origins)
        # Or every site, the user's choice.
        welcome.click("#grant-all")
        welcome.wait_for_function("window.__asked.length === 2")
        assert welcome.evaluate("window.__asked[1]") == {"origins": ["*://*/*"]}

        # After a yes, the page has the worker apply the grants and says what is on: here the test's own
        # sites, which the browser lets RealCheck read (over http) since the install.
        browser.configure(sites=["127.0.0.1", "localhost"], serverUrl=ext_server.url)
        welcome.reload()
        welcome.wait_for_selector("body[data-ready]")
        assert "already read every listed site" in welcome.inner_text("#grant-status")
        # A server that answers: its model, and how good it was measured to be, in the metadata's words.
        assert "model realcheck-tiny version ext-1, ready." in welcome.inner_text("#server-status")
        assert "was not measured; treat a verdict as a hint" in welcome.inner_text("#accuracy")
        welcome.evaluate(RECORD_PERMISSION_REQUESTS, True)
        welcome.click("#grant-news")
        welcome.wait_for_selector("body[data-granted]")
        assert "automatic badges are on for 2 of the 2 listed sites" in welcome.inner_text("#grant-status")

        # "Not now" closes the page. The click is dispatched after `evaluate` returns: a page that closes while
        # Playwright still waits on its own click fails that click with TargetClosedError.
        with welcome.expect_event("close"):
            welcome.evaluate("setTimeout(() => document.getElementById('not-now').click(), 0)")


@needs_chromium
def test_a_page_opened_before_access_or_right_at_browser_start_gets_badges_without_a_reload(
    browser_type, news_site, ext_server, tmp_path
):
    site, _ = news_site
    profile = tmp_path / "profile"
    with launched(browser_type, profile) as browser:
        browser.configure(serverUrl=ext_server.url)
        page = browser.page(site.url())
        page.wait_for_load_state("load")
        time.sleep(1.0)
        assert badges(page) == []  # not a listed site yet
        # Access arrives while the page is open, as after the welcome page's grant: badges, no reload.
        browser.configure(sites=["127.0.0.1"])
        wait_for_badges(page, newspage.TOP_BADGED)

    # The first page of a browser start, opened before the worker has even started: badges every time.
    for _ in range(3):
        context = launch_with_extension(browser_type, profile)
        context.set_default_timeout(WAIT_S * 1000)
        try:
            page = context.new_page()
            page.add_init_script(RECORDER)
            page.goto(site.url())
            wait_for_badges(page, newspage.TOP_BADGED)
        finally:
            context.close()


@needs_chromium
def test_the_popup_says_which_images_lack_access_and_asks_for_exactly_that(
    browser_type, news_site, ext_server, tmp_path
):
    site, _ = news_site
    (site.root / "cdn.html").write_text(newspage.cdn_page(site.url("", host=CDN_HOST)))
    page_url = site.url("cdn.html")
    with launched(browser_type, tmp_path / "profile") as browser:
        browser.configure(serverUrl=ext_server.url, sites=["127.0.0.1"])
        page = browser.page(page_url)
        wait_for_badges(page, newspage.CDN_OWN)
        # Images from the image host the extension may not read: each says so on the image.
        failed = wait_for_badges(page, newspage.CDN_IMAGES, state="failed")
        for badge in failed.values():
            assert f"may not read images from {CDN_HOST}" in badge["text"], badge

        popup = browser.extension_page(f"popup/popup.html?tabId={browser.tab_id(page_url)}")
        popup.wait_for_selector("#missing-section:not([hidden])")
        why = popup.inner_text("#missing-why")
        assert f"No badge on 3 images of this page: they come from {CDN_HOST}" in why, why
        assert popup.inner_text("#grant-missing") == f"Allow {CDN_HOST}"
        popup.set_viewport_size({"width": 360, "height": 420})
        screenshot(popup, "extension-popup-missing-access.png")
        popup.evaluate(RECORD_PERMISSION_REQUESTS, False)
        popup.click("#grant-missing")
        wait_in(popup, "window.__asked.length === 1")
        # Exactly what is missing: that host (the page's own site is granted, and named nowhere).
        assert popup.evaluate("window.__asked") == [{"origins": [f"http://{CDN_HOST}/*"]}]

        # What the worker noted for the tab outlives the worker (MV3 stops it when idle): a new one says the same.
        with browser.restarted_worker(popup):
            popup.reload()
        popup.wait_for_selector("#missing-section:not([hidden])")
        assert popup.inner_text("#missing-why") == why

        # The tab shows another page: what the last one could not read no longer counts.
        page.goto(site.url())
        wait_for_badges(page, newspage.TOP_BADGED)
        popup.reload()
        wait_in(popup, "document.getElementById('host').textContent === '127.0.0.1'")
        assert popup.is_hidden("#missing-section")


@needs_chromium
def test_an_undecodable_image_fails_alone_and_the_images_sent_with_it_get_verdicts(
    browser_type, news_site, ext_server, extension_model, tmp_path
):
    site, _ = news_site
    with launched(browser_type, tmp_path / "profile") as browser:
        browser.configure(serverUrl=ext_server.url, sites=["127.0.0.1"])
        # Hold requests up to 1 s (not 25 ms) for images to join, so that the page's four travel together on
        # this slow shared machine whatever the download times.
        browser.worker.evaluate(
            "async () => { (await realcheck.state).checker.queue.options.maxWaitMs = 1000; }"
        )
        before = metrics(ext_server)
        page = browser.page(site.url("batch.html"))
        good = wait_for_badges(page, newspage.BATCH_GOOD)
        check_verdicts(good, newspage.BATCH_GOOD, extension_model, "ext-1")
        bad = wait_for_badges(page, [newspage.BATCH_BAD], state="failed")[newspage.BATCH_BAD]
        assert bad["label"] == "Check failed", bad
        # The server's own reason, for that image.
        assert "could not check this image" in bad["text"] and "truncated" in bad["text"], bad
        sent = delta(metrics(ext_server), before)
        # One request of four: three scored, one refused in its own slot, none sent again.
        assert (sent["requests"], sent["images"], sent["invalid_images"], sent["refused"]) == (1, 3, 1, 0), (
            sent
        )


@needs_chromium
def test_an_image_that_declares_itself_ai_is_badged_by_its_content_credentials(
    browser_type, news_site, ext_server, tmp_path
):
    site, _ = news_site
    (site.root / "img" / "signed.jpg").write_bytes(provenancegen.signed("trainedAlgorithmicMedia", size=160))
    page_url = site.url(host="localhost")
    with launched(browser_type, tmp_path / "profile") as browser:
        browser.configure(serverUrl=ext_server.url, sites=["127.0.0.1"])
        page = browser.page(page_url)
        page.wait_for_load_state("load")
        browser.right_click(page_url, site.url("img/signed.jpg", host="localhost"))
        page.wait_for_function(
            f"() => ({BADGES})([]).some((b) => b.toast && b.state === 'done' && b.text.includes('Credentials'))"
        )
        [panel] = [badge for badge in badges(page, []) if badge["toast"]]
        assert panel["verdict"] == "ai"
        assert panel["label"] == (
            "AI · Content Credentials: Imaginary Diffusion 3, signed by Test Generator (RealCheck Tests)"
        )
        assert "The model alone says" in panel["text"] and "• C2PA manifest" in panel["text"]
        assert "AI-generated by its own declaration" in panel["aria"]
        screenshot(page, "extension-content-credentials.png")


# The index of the badge drawn on element `id` among all of the overlay's badges (for a Playwright locator).
BADGE_INDEX = """
(id) => {
  const host = document.querySelector("realcheck-overlay");
  const r = document.getElementById(id).getBoundingClientRect();
  return [...host.shadowRoot.querySelectorAll(".badge")].findIndex((badge) => {
    const m = /translate\\((-?[\\d.]+)px, (-?[\\d.]+)px\\)/.exec(badge.style.transform);
    return !badge.hidden && m && Math.abs(Math.max(r.left, 0) + 6 - Number(m[1])) <= 1
      && Math.abs(Math.max(r.top, 0) + 6 - Number(m[2])) <= 1;
  });
}
"""


@needs_chromium
def test_wrong_verdict_reports_reach_the_server_and_the_users_label_stands_for_the_image(
    browser_type, news_site, ext_server, extension_model, tmp_path
):
    import hashlib

    site, files = news_site
    candidates = ["hero", "linked", "srcset", "picture", "dynamic"]
    flagged = next(i for i in candidates if extension_model.verdict(newspage.TOP_BADGED[i]) == "ai")
    passed = next(i for i in candidates if extension_model.verdict(newspage.TOP_BADGED[i]) == "real")
    _, before = ext_server.get_json("/v1/feedback?limit=1000")
    with launched(browser_type, tmp_path / "profile") as browser:
        browser.configure(serverUrl=ext_server.url, sites=["127.0.0.1"])
        page = browser.page(site.url())
        shown = wait_for_badges(page, newspage.TOP_BADGED)
        # Each badge's details say how far the model's verdicts go, in the served metadata's words.
        assert all("was not measured; treat a verdict as a hint" in b["text"] for b in shown.values())

        def report(element_id: str, button: str, share: bool) -> None:
            badge = page.locator("realcheck-overlay .badge").nth(page.evaluate(BADGE_INDEX, element_id))
            badge.click(position={"x": 8, "y": 8})  # open the details
            assert not badge.locator(".share").is_checked(), (
                "sharing the image is off until the user ticks it"
            )
            if share:
                badge.locator(".share").check()
            other = ".report-ai" if button == ".report-real" else ".report-real"
            assert badge.locator(other).count() == 0, "only the opposite of a firm verdict is offered"
            badge.locator(button).click()
            badge.locator(".feedback-status", has_text="your report was sent").wait_for()

        # An image the model flags, shared: "Wrong? It's real".
        report(flagged, ".report-real", share=True)
        mine = wait_for_badges(page, [flagged], where=lambda b: "your report" in b["label"])[flagged]
        assert mine["verdict"] == "real" and "you reported" in mine["aria"].lower(), mine
        screenshot(page, "extension-feedback.png")
        # An image the model passes, not shared: "Wrong? It's AI".
        report(passed, ".report-ai", share=False)
        wait_for_badges(page, [passed], where=lambda b: b["verdict"] == "ai" and "your report" in b["label"])

        _, after = ext_server.get_json("/v1/feedback?limit=1000")
        new = after["reports"][len(before["reports"]) :]
        assert [(r["label"], r["image_shared"], r["client"]) for r in new] == [
            ("real", True, "extension"),
            ("ai", False, "extension"),
        ]
        for report_, element_id in zip(new, (flagged, passed)):
            path = newspage.TOP_BADGED[element_id]
            assert report_["sha256"] == hashlib.sha256(files[path]).hexdigest()
            assert report_["model"] == {"name": "realcheck-tiny", "version": "ext-1"}
            assert report_["score"] == pytest.approx(extension_model.score(path))
        # Nothing about where the image was seen: no page or image address, no host.
        assert "127.0.0.1" not in json.dumps(new) and "img/" not in json.dumps(new)
        from realcheck.server.feedback.store import FeedbackStore

        assert (
            FeedbackStore(ext_server.feedback_db).image(new[0]["sha256"]).data
            == files[newspage.TOP_BADGED[flagged]]
        )

        # Another visit: the user's answers still stand for those images, marked as theirs.
        page.reload()
        again = wait_for_badges(page, [flagged, passed], where=lambda b: "your report" in b["label"])
        assert (again[flagged]["verdict"], again[passed]["verdict"]) == ("real", "ai")
