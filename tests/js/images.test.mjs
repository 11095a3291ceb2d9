// Image bytes: format signatures and header sizes on real encoder output, downloads, gates, hashing.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { fetchImage, imageSize, sha256Hex, sniffFormat } from "../../extension/background/images.js";

const samples = process.env.REALCHECK_SAMPLES;

test("formats and sizes from the headers of real files", { skip: !samples && "run through pytest" }, () => {
  const expected = { jpg: "jpeg", png: "png", gif: "gif", webp: "webp", bmp: "bmp", tiff: "tiff" };
  const files = readdirSync(samples);
  assert.ok(files.length >= 8);
  for (const name of files) {
    const bytes = new Uint8Array(readFileSync(join(samples, name)));
    const format = sniffFormat(bytes);
    assert.equal(format, expected[name.split(".").pop()], name);
    if (format !== "tiff") assert.deepEqual(imageSize(bytes, format), { width: 321, height: 123 }, name);
  }
});

test("SVG and other text is recognised as not a photograph", () => {
  const encode = (text) => new TextEncoder().encode(text);
  assert.equal(sniffFormat(encode('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>')), "svg");
  assert.equal(sniffFormat(encode("  <svg></svg>")), "svg");
  assert.equal(sniffFormat(encode("<html>not found</html>")), null);
});

test("sha256Hex matches Node's own SHA-256", async () => {
  const bytes = new TextEncoder().encode("realcheck");
  assert.equal(await sha256Hex(bytes), createHash("sha256").update(bytes).digest("hex"));
});

function png(width, height) {
  const bytes = new Uint8Array(33);
  bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const view = new DataView(bytes.buffer);
  view.setUint32(16, width);
  view.setUint32(20, height);
  return bytes;
}

const serve = (bytes, type = "image/png", status = 200) => async () =>
  new Response(bytes, { status, headers: { "Content-Type": type } });

test("downloads: small images are skipped unless the user asked, SVG always", async () => {
  const ok = await fetchImage("https://x/a.png", { fetchImpl: serve(png(400, 300)) });
  assert.deepEqual([ok.format, ok.size, ok.type], ["png", { width: 400, height: 300 }, "image/png"]);
  await assert.rejects(fetchImage("https://x/i.png", { fetchImpl: serve(png(64, 64)) }), (e) => e.code === "tiny" && e.skip);
  const asked = await fetchImage("https://x/i.png", { anySize: true, fetchImpl: serve(png(64, 64)) });
  assert.equal(asked.size.width, 64);
  const svg = new TextEncoder().encode("<svg xmlns='http://www.w3.org/2000/svg'/>");
  await assert.rejects(fetchImage("https://x/s", { fetchImpl: serve(svg, "image/svg+xml") }), (e) => e.code === "svg" && e.skip);
});

test("downloads: failures say why; only http, https and data URLs are read", async () => {
  await assert.rejects(fetchImage("https://x/404.jpg", { fetchImpl: serve("", "text/html", 404) }), /HTTP 404/);
  await assert.rejects(
    fetchImage("https://x/a.jpg", { fetchImpl: async () => { throw new TypeError("Failed to fetch"); } }),
    (e) => e.code === "fetch_blocked",
  );
  await assert.rejects(fetchImage("blob:https://x/1234"), (e) => e.code === "unsupported_url");
  await assert.rejects(
    fetchImage("https://x/page", { fetchImpl: serve("<html></html>", "text/html") }),
    (e) => e.code === "unsupported_format",
  );
});

test("downloads over the server's per-image limit are not sent, by header or by size", async () => {
  const bytes = png(400, 300);
  const declared = async () => new Response(bytes, { headers: { "Content-Type": "image/png", "Content-Length": "5000000" } });
  await assert.rejects(
    fetchImage("https://x/a.png", { maxBytes: 4 * 1024 * 1024, fetchImpl: declared }),
    (e) => e.code === "too_large" && !e.skip && /over the 4 MB the server accepts/.test(e.message),
  );
  await assert.rejects(fetchImage("https://x/a.png", { maxBytes: 32, fetchImpl: serve(bytes) }), (e) => e.code === "too_large");
  assert.equal((await fetchImage("https://x/a.png", { maxBytes: 33, fetchImpl: serve(bytes) })).bytes.length, 33);
});
