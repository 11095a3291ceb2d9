"""A local "news page" for the extension tests: many kinds of images, served over loopback HTTP.

The page holds what real news pages hold: plain images, `srcset` (the browser's choice differs from `src`),
`<picture>` with a WebP source, an image inside a link, a CSS background on a large element, an image in a web
component's shadow root, the same image twice (same URL) and the same bytes under another URL, an image the
page inserts after load, a native lazy image and a script-lazy one far below, and things that must not get
badges: icons, a tracking pixel, an SVG, a large image shown as a thumbnail, a hidden image, a small element
with a background and a broken image.
"""

from __future__ import annotations

import functools
import io
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import imagegen
from PIL import Image

# Element id -> image file, for every element that must get a badge once it is near the viewport.
TOP_BADGED = {
    "plain": "img/plain.jpg",
    "srcset": "img/srcset-300.jpg",
    "picture": "img/picture.webp",
    "linked": "img/linked.png",
    "hero": "img/hero.jpg",
    "dup-url": "img/plain.jpg",
    "dup-bytes": "img/copy-of-plain.jpg",
    "dynamic": "img/dynamic.jpg",
    "shadow-card": "img/shadow.jpg",
}
BELOW_BADGED = {
    "lazy-native": "img/lazy-native.jpg",
    "lazy-js": "img/lazy-js.jpg",
    "late-dup": "img/plain.jpg",
}
NOT_BADGED = ["logo", "icon", "tracker", "chart", "thumb", "hidden", "small-bg", "broken"]
# Files whose bytes the server must see exactly once each (copy-of-plain.jpg has plain.jpg's bytes).
TOP_DISTINCT = [
    "plain.jpg",
    "srcset-300.jpg",
    "picture.webp",
    "linked.png",
    "hero.jpg",
    "dynamic.jpg",
    "shadow.jpg",
]
BELOW_DISTINCT = ["lazy-native.jpg", "lazy-js.jpg"]
# batch.html: pictures found together, and one the browser shows but the server cannot decode (a JPEG cut short).
BATCH_GOOD = {"b-plain": "img/plain.jpg", "b-linked": "img/linked.png", "b-srcset": "img/srcset-300.jpg"}
BATCH_BAD = "b-truncated"
# cdn.html: one picture from the site itself, the others from an image host (a news site's CDN).
CDN_OWN = {"c-own": "img/srcset-300.jpg"}
CDN_IMAGES = {"c-plain": "img/plain.jpg", "c-linked": "img/linked.png", "c-hero": "img/hero.jpg"}
# Files that must never be sent: the browser did not choose them, or they are not candidates.
NEVER_SENT = [
    "srcset-900.jpg",
    "srcset-fallback.jpg",
    "picture.jpg",
    "thumb-source.jpg",
    "hidden.jpg",
    "tile.png",
]

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>The Daily Fixture</title>
<style>
  body { margin: 0; font: 15px/1.4 Georgia, serif; background: #fafafa; color: #111; }
  header.site { position: sticky; top: 0; z-index: 10; height: 56px; display: flex; align-items: center;
                gap: 12px; padding: 0 16px; background: #101418; color: #fff; font: 700 20px/1 sans-serif; }
  .grid { display: grid; grid-template-columns: repeat(4, 300px); gap: 16px; padding: 16px; }
  figure { margin: 0; }
  img { display: block; }
  .hero { grid-column: span 2; height: 300px; background: #223 url("img/hero.jpg") center / cover no-repeat;
          color: #fff; display: flex; align-items: flex-end; padding: 0 16px; box-sizing: border-box; }
  .small-bg { width: 40px; height: 40px; background-image: url("img/tile.png"); }
  .spacer { height: 3200px; }
</style>
</head>
<body>
<header class="site">
  <img id="logo" src="img/logo.svg" width="32" height="32" alt="The Daily Fixture">
  <img id="icon" src="img/icon.png" width="16" height="16" alt="">
  The Daily Fixture
</header>
<main>
  <div class="grid" id="top">
    <figure><img id="plain" src="img/plain.jpg" width="300" height="200" alt="A flooded street"></figure>
    <figure><img id="srcset" src="img/srcset-fallback.jpg" srcset="img/srcset-300.jpg 300w, img/srcset-900.jpg 900w"
                 sizes="300px" width="300" height="200" alt="The harbour at dawn"></figure>
    <figure><picture><source srcset="img/picture.webp" type="image/webp">
      <img id="picture" src="img/picture.jpg" width="300" height="200" alt="The market"></picture></figure>
    <figure><a href="article.html"><img id="linked" src="img/linked.png" width="300" height="200"
                 alt="The council meeting"></a></figure>
    <div class="hero" id="hero"><h2>Storm season: what the pictures show</h2></div>
    <figure><img id="dup-url" src="img/plain.jpg" width="300" height="200" alt="The flooded street again"></figure>
    <figure><img id="dup-bytes" src="img/copy-of-plain.jpg" width="300" height="200" alt="Same picture, other address"></figure>
    <figure><img id="thumb" src="img/thumb-source.jpg" width="64" height="64" alt="A thumbnail"></figure>
    <news-card id="shadow-card" src="img/shadow.jpg"></news-card>
    <figure id="dynamic-slot"></figure>
    <figure><img id="chart" src="img/chart.svg" width="300" height="200" alt="A chart"></figure>
    <figure><img id="tracker" src="img/pixel.gif" width="1" height="1" alt=""></figure>
    <figure><img id="hidden" src="img/hidden.jpg" width="300" height="200" style="display: none" alt=""></figure>
    <div class="small-bg" id="small-bg"></div>
    <figure><img id="broken" src="img/corrupt.jpg" width="300" height="200" alt="A broken picture"></figure>
  </div>
  <div class="spacer"></div>
  <div class="grid" id="below">
    <img id="lazy-native" loading="lazy" src="img/lazy-native.jpg" width="300" height="200" alt="Lazy picture">
    <img id="lazy-js" class="js-lazy" src="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
         data-src="img/lazy-js.jpg" width="300" height="200" alt="Script-lazy picture">
    <img id="late-dup" src="img/plain.jpg" loading="lazy" width="300" height="200" alt="The flooded street, once more">
  </div>
  <footer style="height: 1000px; padding: 16px">The Daily Fixture, a page for tests.</footer>
</main>
<script src="page.js"></script>
</body>
</html>
"""

# The page's own behaviour: an image inserted after load, and a script lazy loader like news sites use.
SCRIPT = """
// A web component whose picture lives in its open shadow root.
customElements.define("news-card", class extends HTMLElement {
  connectedCallback() {
    const image = document.createElement("img");
    image.src = this.getAttribute("src"); image.width = 300; image.height = 200; image.alt = "In a web component";
    image.style.display = "block";
    this.style.display = "block";
    this.attachShadow({ mode: "open" }).append(image);
  }
});
setTimeout(() => {
  const image = document.createElement("img");
  image.id = "dynamic"; image.src = "img/dynamic.jpg"; image.width = 300; image.height = 200;
  image.alt = "Inserted by the page";
  document.getElementById("dynamic-slot").append(image);
}, 400);
const lazy = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (entry.isIntersecting) { entry.target.src = entry.target.dataset.src; lazy.unobserve(entry.target); }
  }
}, { rootMargin: "200px" });
document.querySelectorAll(".js-lazy").forEach((image) => lazy.observe(image));
"""

BATCH_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Four pictures</title>
<style> body { margin: 0; display: flex; flex-wrap: wrap; gap: 16px; padding: 16px; } img { display: block; } </style>
</head><body>
<img id="b-plain" src="img/plain.jpg" width="300" height="200" alt="One">
<img id="b-truncated" src="img/truncated.jpg" width="300" height="200" alt="Cut short">
<img id="b-linked" src="img/linked.png" width="300" height="200" alt="Two">
<img id="b-srcset" src="img/srcset-300.jpg" width="300" height="200" alt="Three">
</body></html>
"""


def cdn_page(image_base: str) -> str:
    """A page whose pictures but one come from `image_base` (another host, like a news site's image CDN)."""
    images = "\n".join(
        f'<img id="{element_id}" src="{image_base}{path}" width="300" height="200" alt="">'
        for element_id, path in CDN_IMAGES.items()
    )
    own = "\n".join(
        f'<img id="{element_id}" src="{path}" width="300" height="200" alt="">'
        for element_id, path in CDN_OWN.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Pictures from elsewhere</title>
<style> body {{ margin: 0; display: flex; flex-wrap: wrap; gap: 16px; padding: 16px; }} img {{ display: block; }} </style>
</head><body>
{own}
{images}
</body></html>
"""


SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="300" height="200" viewBox="0 0 300 200">
<rect width="300" height="200" fill="#eef"/><polyline points="0,180 60,120 120,140 180,60 240,90 300,20"
fill="none" stroke="#36c" stroke-width="6"/></svg>
"""


LOGO = """<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32" viewBox="0 0 32 32">
<circle cx="16" cy="16" r="14" fill="#f5c518"/><text x="16" y="22" font-size="16" text-anchor="middle">D</text></svg>
"""


def picture(label: str, seed: int, size: tuple[int, int] = (300, 200)) -> Image.Image:
    """A synthetic photo-sized image of a class (imagegen's statistics, stretched to `size`)."""
    side = max(size)
    return Image.fromarray(imagegen.make_array(label, side, seed)).crop((0, 0, *size))


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 90} if fmt in {"JPEG", "WEBP"} else {}))
    return buffer.getvalue()


def write_site(root: Path) -> dict[str, bytes]:
    """Write the page, its script and every image under `root`; returns {relative path: bytes}."""
    files: dict[str, bytes] = {
        "index.html": PAGE.encode(),
        "batch.html": BATCH_PAGE.encode(),
        "article.html": b"<!doctype html><title>Article</title><p>An article.</p>",
        "page.js": SCRIPT.encode(),
        "img/logo.svg": LOGO.encode(),
        "img/chart.svg": SVG.encode(),
        "img/icon.png": encode(picture("real", 1, (16, 16)), "PNG"),
        "img/pixel.gif": encode(Image.new("RGB", (1, 1), (255, 255, 255)), "GIF"),
        "img/tile.png": encode(picture("real", 2, (40, 40)), "PNG"),
    }
    photos = {
        "plain.jpg": ("ai", 11, "JPEG"),
        "srcset-300.jpg": ("real", 12, "JPEG"),
        "srcset-900.jpg": ("real", 13, "JPEG"),
        "srcset-fallback.jpg": ("real", 14, "JPEG"),
        "picture.webp": ("ai", 15, "WEBP"),
        "picture.jpg": ("ai", 16, "JPEG"),
        "linked.png": ("real", 17, "PNG"),
        "hero.jpg": ("ai", 18, "JPEG"),
        "dynamic.jpg": ("real", 19, "JPEG"),
        "thumb-source.jpg": ("ai", 20, "JPEG"),
        "hidden.jpg": ("real", 21, "JPEG"),
        "lazy-native.jpg": ("ai", 22, "JPEG"),
        "lazy-js.jpg": ("real", 23, "JPEG"),
        "shadow.jpg": ("ai", 24, "JPEG"),
    }
    sizes = {"srcset-900.jpg": (900, 600), "hero.jpg": (640, 320)}
    for name, (label, seed, fmt) in photos.items():
        files[f"img/{name}"] = encode(picture(label, seed, sizes.get(name, (300, 200))), fmt)
    files["img/copy-of-plain.jpg"] = files["img/plain.jpg"]
    # The first two thirds of a JPEG: the browser draws the top of it, the server refuses it as truncated.
    whole = encode(picture("real", 31), "JPEG")
    files["img/truncated.jpg"] = whole[: len(whole) * 2 // 3]
    # A JPEG signature and nothing decodable: the browser shows a broken image, the server answers a JSON 400.
    files["img/corrupt.jpg"] = b"\xff\xd8\xff\xe0" + b"this is not really a JPEG " * 20
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


@dataclass
class SiteServer:
    """A static file server on 127.0.0.1 that counts the requests for each path."""

    root: Path
    hits: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        hits, lock = self.hits, threading.Lock()

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args):  # quiet test output
                pass

            def end_headers(self):
                # No caching: every fetch the browser or the extension makes reaches this server and is counted.
                self.send_header("Cache-Control", "no-store")
                super().end_headers()

            def do_GET(self):
                with lock:
                    hits[self.path.split("?")[0]] += 1
                super().do_GET()

        self.httpd = ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(self.root))
        )
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "index.html", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
