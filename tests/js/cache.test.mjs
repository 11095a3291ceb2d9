// The result cache: by URL and by bytes, time limit, model changes, size bound, the session mirror.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ResultCache } from "../../extension/background/cache.js";

const result = (version, score = 0.9) => ({ state: "done", verdict: "ai", score, model: { name: "m", version } });

test("a result is found by URL and by the SHA-256 of the bytes", () => {
  const cache = new ResultCache();
  cache.put("https://a/x.jpg", "h1", result("1"));
  assert.equal(cache.getByUrl("https://a/x.jpg").score, 0.9);
  assert.equal(cache.getByHash("h1").score, 0.9);
  assert.equal(cache.getByUrl("https://b/copy.jpg"), undefined);
  cache.linkUrl("https://b/copy.jpg", "h1");
  assert.equal(cache.getByUrl("https://b/copy.jpg").score, 0.9);
});

test("entries expire after the time limit", () => {
  let now = 0;
  const cache = new ResultCache(null, { ttlMs: 1000 }, () => now);
  cache.put("u", "h", result("1"));
  now = 999;
  assert.ok(cache.getByHash("h"));
  now = 1000;
  assert.equal(cache.getByHash("h"), undefined);
  assert.equal(cache.getByUrl("u"), undefined);
});

test("a new model version empties the cache", () => {
  const cache = new ResultCache();
  assert.equal(cache.observeModel({ name: "m", version: "1" }), false);
  cache.put("u", "h", result("1"));
  assert.equal(cache.observeModel({ name: "m", version: "1" }), false);
  assert.ok(cache.getByUrl("u"));
  assert.equal(cache.observeModel({ name: "m", version: "2" }), true);
  assert.equal(cache.getByUrl("u"), undefined);
  assert.equal(cache.size, 0);
});

test("the least recently used entries go first when full", () => {
  const cache = new ResultCache(null, { maxEntries: 2 });
  cache.put("u1", "h1", result("1"));
  cache.put("u2", "h2", result("1"));
  cache.getByHash("h1");
  cache.put("u3", "h3", result("1"));
  assert.ok(cache.getByHash("h1"));
  assert.equal(cache.getByHash("h2"), undefined);
});

test("the cache survives a worker restart through the session storage mirror", async () => {
  const stored = {};
  const area = {
    get: async (key) => ({ [key]: stored[key] }),
    set: async (items) => Object.assign(stored, JSON.parse(JSON.stringify(items))),
  };
  const cache = new ResultCache(area, { persistDelayMs: 1 });
  cache.put("u", "h", result("7"));
  await new Promise((resolve) => setTimeout(resolve, 20));
  const restarted = await new ResultCache(area).load();
  assert.equal(restarted.getByUrl("u").model.version, "7");
  assert.equal(restarted.observeModel({ name: "m", version: "7" }), false);
});
