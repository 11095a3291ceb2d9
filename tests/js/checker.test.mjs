// The checker: one download per URL, one upload per distinct bytes, verdicts cached, model changes.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ResultCache } from "../../extension/background/cache.js";
import { Checker, resultFromPrediction } from "../../extension/background/checker.js";

function png(width, height, salt) {
  const bytes = new Uint8Array(40);
  bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const view = new DataView(bytes.buffer);
  view.setUint32(16, width);
  view.setUint32(20, height);
  bytes[39] = salt;
  return bytes;
}

function setup({ files, version = "1", fail = null }) {
  const downloads = [];
  const uploads = [];
  globalThis.fetch = async (url) => {
    downloads.push(url);
    const bytes = files[url];
    if (!bytes) return new Response("", { status: 404 });
    return new Response(bytes, { headers: { "Content-Type": "image/png" } });
  };
  const client = {
    predict: async (blobs) => {
      if (fail) throw fail;
      uploads.push(blobs.length);
      const scores = await Promise.all(blobs.map(async (b) => new Uint8Array(await b.arrayBuffer())[39] / 100));
      return {
        model: { name: "m", version: client.version },
        decision: { threshold: 0.5, uncertainty_band: [0.45, 0.55] },
        predictions: scores.map((score) => ({ score, verdict: score >= 0.5 ? "ai" : "real", sha256: "x", threshold: 0.5 })),
      };
    },
    version,
  };
  const changes = [];
  const checker = new Checker({
    client,
    cache: new ResultCache(),
    onModelChanged: (model) => changes.push(model.version),
    queueOptions: { maxWaitMs: 5 },
  });
  return { checker, client, downloads, uploads, changes };
}

test("the same URL is downloaded once; the same bytes under another URL are uploaded once", async () => {
  const image = png(300, 200, 90);
  const files = { "https://a/1.png": image, "https://b/copy.png": image, "https://a/2.png": png(300, 200, 20) };
  const { checker, downloads, uploads } = setup({ files });
  const results = await Promise.all([
    checker.check("https://a/1.png"),
    checker.check("https://a/1.png"),
    checker.check("https://a/2.png"),
  ]);
  assert.deepEqual(results.map((r) => r.verdict), ["ai", "ai", "real"]);
  const copy = await checker.check("https://b/copy.png");
  assert.equal(copy.verdict, "ai");
  assert.equal(copy.model.version, "1");
  assert.deepEqual(downloads.sort(), ["https://a/1.png", "https://a/2.png", "https://b/copy.png"]);
  assert.equal(uploads.reduce((a, b) => a + b, 0), 2);
  await checker.check("https://a/1.png"); // cached: no download, no upload
  assert.equal(downloads.length, 3);
});

test("tiny images are too small to judge, also when the user asks: nothing is sent", async () => {
  const { checker, uploads } = setup({ files: { "https://a/icon.png": png(32, 32, 70) } });
  const auto = await checker.check("https://a/icon.png");
  assert.deepEqual([auto.state, auto.code], ["skipped", "tiny"]);
  const manual = await checker.check("https://a/icon.png", { manual: true });
  assert.deepEqual([manual.state, manual.code], ["skipped", "tiny"]);
  assert.equal(uploads.length, 0);
});

test("failures come back as results: a download error, a refused key", async () => {
  const missing = await setup({ files: {} }).checker.check("https://a/gone.png");
  assert.deepEqual([missing.state, missing.code], ["failed", "fetch_failed"]);
  const refused = Object.assign(new Error("missing or wrong API key"), { status: 401, code: "unauthorized" });
  const { checker } = setup({ files: { "https://a/1.png": png(300, 200, 10) }, fail: refused });
  const result = await checker.check("https://a/1.png");
  assert.equal(result.state, "failed");
  assert.match(result.message, /API key/);
});

test("a new model version drops cached verdicts and says so", async () => {
  const { checker, client, changes, uploads } = setup({ files: { "https://a/1.png": png(300, 200, 90), "https://a/2.png": png(300, 200, 10) } });
  await checker.check("https://a/1.png");
  client.version = "2";
  const second = await checker.check("https://a/2.png");
  assert.equal(second.model.version, "2");
  assert.deepEqual(changes, ["2"]);
  const again = await checker.check("https://a/1.png");
  assert.equal(again.model.version, "2");
  assert.equal(uploads.length, 3);
});

test("an image host the extension may not read is reported as such, so the popup can offer access", async () => {
  globalThis.fetch = async () => {
    throw new TypeError("Failed to fetch");
  };
  const checker = new Checker({
    client: { predict: async () => assert.fail("nothing to send") },
    cache: new ResultCache(),
    hasAccess: async (url) => !url.includes("cdn.example"),
  });
  const blocked = await checker.check("https://cdn.example/photo.jpg");
  assert.deepEqual([blocked.state, blocked.code], ["failed", "no_access"]);
  assert.match(blocked.message, /cdn\.example/);
  const other = await checker.check("https://news.example/photo.jpg");
  assert.equal(other.code, "fetch_blocked");
});

test("an image the server cannot decode fails alone with the server's reason; the images sent with it get verdicts", async () => {
  const files = { "https://a/1.png": png(300, 200, 90), "https://a/bad.png": png(300, 200, 0), "https://a/2.png": png(300, 200, 20) };
  globalThis.fetch = async (url) => new Response(files[url], { headers: { "Content-Type": "image/png" } });
  const requests = [];
  const client = {
    predict: async (blobs) => {
      const salts = await Promise.all(blobs.map(async (b) => new Uint8Array(await b.arrayBuffer())[39]));
      requests.push(salts);
      return {
        model: { name: "m", version: "1" },
        decision: { threshold: 0.5, uncertainty_band: [0.45, 0.55] },
        predictions: salts.map((salt, i) =>
          salt === 0
            ? { error: { code: "invalid_image", message: `image ${i + 1} (image-${i}): cannot identify image file` }, sha256: "x", filename: `image-${i}` }
            : { score: salt / 100, verdict: salt >= 50 ? "ai" : "real", sha256: "y", threshold: 0.5 },
        ),
      };
    },
  };
  const checker = new Checker({ client, cache: new ResultCache(), queueOptions: { maxWaitMs: 30 } });
  const [first, bad, second] = await Promise.all(Object.keys(files).map((url) => checker.check(url)));
  assert.equal(requests.length, 1, `one request for the three images: ${JSON.stringify(requests)}`);
  assert.deepEqual([first.state, first.verdict, second.state, second.verdict], ["done", "ai", "done", "real"]);
  assert.deepEqual([bad.state, bad.code], ["failed", "invalid_image"]);
  assert.match(bad.message, /^the server could not check this image: image \d \(image-\d\): cannot identify image file$/);
  // Not cached as a verdict: asking again sends it again (alone, this time).
  const again = await checker.check("https://a/bad.png");
  assert.equal(again.state, "failed");
  assert.equal(requests.length, 2);
});

test("the ranges and the measured accuracy reach the result, from today's fields or an older server's band", () => {
  const statement = "In tests on image collections it never saw, it called 20% of AI images AI.";
  const today = resultFromPrediction(
    { model: { name: "m", version: "1" }, decision: { threshold: 0.9, accuracy_statement: statement } },
    { score: 0.5, verdict: "uncertain", sha256: "x", real_below: 0.3, ai_above: 0.9 },
  );
  assert.deepEqual([today.ranges, today.accuracy], [{ realBelow: 0.3, aiAbove: 0.9 }, statement]);
  assert.equal(today.imageRule, "main");
  const small = resultFromPrediction(
    { model: { name: "m", version: "1" }, decision: { threshold: 0.9 } },
    { score: 0.5, verdict: "uncertain", sha256: "x", real_below: 0.2, ai_above: 0.7, image_rule: "compressed_image" },
  );
  assert.deepEqual([small.ranges, small.imageRule], [{ realBelow: 0.2, aiAbove: 0.7 }, "compressed_image"]);
  // A rule this extension does not know is shown as the main rule's ranges, never as a name it cannot word.
  const unknown = resultFromPrediction({ model: {}, decision: {} }, { score: 0.5, verdict: "uncertain", image_rule: "<b>" });
  assert.equal(unknown.imageRule, "main");
  const older = resultFromPrediction(
    { model: { name: "m", version: "1" }, decision: { threshold: 0.5, uncertainty_band: [0.45, 0.55] } },
    { score: 0.5, verdict: "uncertain", sha256: "x", threshold: 0.5 },
  );
  assert.deepEqual([older.ranges, older.accuracy], [{ realBelow: 0.45, aiAbove: 0.55 }, null]);
});

test("a prediction's basis, model verdict and provenance reach the result, bounded", () => {
  const result = resultFromPrediction(
    { model: { name: "m", version: "1" }, decision: { threshold: 0.5 } },
    {
      score: 0.1,
      verdict: "ai",
      basis: "provenance",
      model_verdict: "real",
      sha256: "x",
      provenance: {
        summary: "AI · declared in XMP: trainedAlgorithmicMedia (unsigned)",
        declares_ai: true,
        signed_capture: false,
        evidence: Array.from({ length: 20 }, () => ({ kind: "generator", says: "ai", trust: "declared", source: "XMP", detail: "y".repeat(500) })),
        c2pa: null,
      },
    },
  );
  assert.equal(result.basis, "provenance");
  assert.equal(result.modelVerdict, "real");
  assert.equal(result.provenance.declaresAi, true);
  assert.equal(result.provenance.evidence.length, 8);
  assert.equal(result.provenance.evidence[0].detail.length, 200);
  const old = resultFromPrediction({ model: {} }, { score: 0.7, verdict: "ai", sha256: "x" });
  assert.equal(old.basis, "model");
  assert.equal(old.modelVerdict, "ai");
  assert.equal(old.provenance, null);
});
