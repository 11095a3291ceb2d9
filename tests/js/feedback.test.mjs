// Reporting a wrong verdict: what the report holds (and does not), sharing the image only when asked and only
// if it is still the image that was checked, and the user's label standing for the image afterwards.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";

import { feedbackReport, reportFeedback, UserLabels, USER_LABELS_KEY } from "../../extension/background/feedback.js";
import { ServerClient } from "../../extension/background/api.js";

const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 200, 0, 0, 0, 100]);
const SHA = createHash("sha256").update(PNG).digest("hex");
const RESULT = { state: "done", verdict: "ai", score: 0.93, sha256: SHA, model: { name: "m", version: "7" } };

function memoryArea() {
  const items = {};
  return { items, get: async (key) => ({ [key]: structuredClone(items[key]) }), set: async (values) => Object.assign(items, structuredClone(values)) };
}

function server() {
  const calls = [];
  const fetchImpl = async (url, init) => {
    calls.push({ url, init, body: JSON.parse(init.body) });
    return new Response(JSON.stringify({ report: { id: calls.length } }), { status: 201, headers: { "Content-Type": "application/json" } });
  };
  return { calls, client: new ServerClient({ serverUrl: "http://127.0.0.1:8000", apiKey: "k", fetchImpl }) };
}

const imageHost = (bytes) => async () => new Response(bytes, { status: 200, headers: { "Content-Type": "image/png" } });

test("a report holds the hash, label, model, score and verdict, and no address", async () => {
  const { calls, client } = server();
  const labels = new UserLabels(memoryArea());
  const url = "https://news.example/photos/secret-story.png?user=42";
  const stored = await reportFeedback({ client, labels, url, result: RESULT, label: "real" });
  assert.equal(stored.id, 1);
  assert.equal(calls[0].url, "http://127.0.0.1:8000/v1/feedback");
  assert.equal(calls[0].init.headers["Content-Type"], "application/json");
  assert.equal(calls[0].init.headers["X-API-Key"], "k");
  assert.equal(calls[0].init.credentials, "omit");
  assert.deepEqual(calls[0].body, {
    sha256: SHA, label: "real", model: { name: "m", version: "7" }, score: 0.93, verdict: "ai", client: "extension",
  });
  assert.ok(!JSON.stringify(calls[0].body).includes("news.example"));
});

test("the image is sent only when shared, downloaded without cookies, and must be the bytes checked", async () => {
  const { calls, client } = server();
  const labels = new UserLabels(memoryArea());
  const downloads = [];
  const fetchImpl = async (url, init) => {
    downloads.push(init);
    return imageHost(PNG)();
  };
  await reportFeedback({ client, labels, url: "https://x.example/a.png", result: RESULT, label: "real", share: true, fetchImpl });
  assert.equal(Buffer.from(calls[0].body.image_b64, "base64").compare(Buffer.from(PNG)), 0);
  assert.equal(downloads[0].credentials, "omit");
  const changed = new Uint8Array(PNG);
  changed[23] = 7;
  await assert.rejects(
    reportFeedback({ client, labels, url: "https://x.example/a.png", result: RESULT, label: "ai", share: true, fetchImpl: imageHost(changed) }),
    /changed since it was checked/,
  );
  assert.equal(calls.length, 1, "nothing was sent for the changed image");
  assert.equal(await labels.labelFor(SHA), "real");
  assert.equal(feedbackReport(RESULT, "ai").image_b64, undefined);
});

test("only checked images with a known label can be reported", async () => {
  const { calls, client } = server();
  const labels = new UserLabels(memoryArea());
  await assert.rejects(reportFeedback({ client, labels, url: "https://x/a.png", result: RESULT, label: "fake" }), /unknown label/);
  await assert.rejects(reportFeedback({ client, labels, url: "https://x/a.png", result: { state: "failed" }, label: "ai" }), /checked image/);
  assert.equal(calls.length, 0);
});

test("the user's label stands for the image: results are decorated, a failed send records nothing", async () => {
  const area = memoryArea();
  const labels = new UserLabels(area);
  assert.deepEqual(await labels.decorate(RESULT), RESULT);
  const failing = new ServerClient({
    serverUrl: "http://s",
    fetchImpl: async () => new Response(JSON.stringify({ error: { code: "unknown_field", message: "no" } }), { status: 400 }),
  });
  await assert.rejects(reportFeedback({ client: failing, labels, url: "https://x/a.png", result: RESULT, label: "real" }), /no/);
  assert.equal(await labels.labelFor(SHA), null);
  await labels.set(SHA, "real");
  assert.deepEqual(await labels.decorate(RESULT), { ...RESULT, userLabel: "real" });
  assert.deepEqual(await labels.decorate({ state: "failed" }), { state: "failed" });
  assert.deepEqual(Object.keys(area.items[USER_LABELS_KEY]), [SHA]);
  // Bounded: the oldest labels go first.
  const small = new UserLabels(area, { maxLabels: 3 });
  for (let i = 0; i < 3; i += 1) await small.set(i.toString(16).padStart(64, "0"), "ai");
  const kept = Object.keys(area.items[USER_LABELS_KEY]);
  assert.equal(kept.length, 3);
  assert.ok(!kept.includes(SHA));
});
