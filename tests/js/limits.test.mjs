// The server's upload limits: the defaults until the server says, then its own, kept per server in storage.
import assert from "node:assert/strict";
import { test } from "node:test";

import { DEFAULT_LIMITS, limitsFrom, ServerLimits } from "../../extension/background/limits.js";

function memoryArea() {
  const items = {};
  return { items, get: async (key) => ({ [key]: structuredClone(items[key]) }), set: async (more) => Object.assign(items, structuredClone(more)) };
}

const client = (serverUrl, answer) => ({
  serverUrl,
  asked: 0,
  async limits() {
    this.asked += 1;
    if (answer instanceof Error) throw answer;
    return answer;
  },
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test("a server's answer replaces the defaults, only with positive integers it states", () => {
  assert.deepEqual(limitsFrom(null), DEFAULT_LIMITS);
  const limits = limitsFrom({ max_image_bytes: 1000, max_request_bytes: -1, max_images_per_request: 2.5, other: 3 });
  assert.deepEqual(limits, { ...DEFAULT_LIMITS, max_image_bytes: 1000 });
});

test("the defaults stand until the server answers; its limits are kept for the next worker start", async () => {
  const area = memoryArea();
  const limits = new ServerLimits(area);
  const server = client("http://a", { max_image_bytes: 5000, max_request_bytes: 9000, max_images_per_request: 3 });
  await limits.use(server);
  await sleep(0);
  assert.equal(server.asked, 1);
  assert.equal(limits.maxImageBytes, 5000);
  assert.deepEqual(area.items.serverLimits, { serverUrl: "http://a", limits: { max_image_bytes: 5000, max_request_bytes: 9000, max_images_per_request: 3 } });

  // A new worker: the stored limits at once, without asking the server again.
  const restarted = new ServerLimits(area);
  const again = client("http://a", new Error("not asked"));
  await restarted.use(again);
  assert.equal(restarted.maxImageBytes, 5000);
  assert.equal(again.asked, 0);
});

test("another server starts from the defaults; an unreachable or older server leaves them", async () => {
  const area = memoryArea();
  area.items.serverLimits = { serverUrl: "http://a", limits: { ...DEFAULT_LIMITS, max_image_bytes: 5000 } };
  const limits = new ServerLimits(area);
  await limits.use(client("http://b", new Error("unreachable")));
  await sleep(0);
  assert.equal(limits.maxImageBytes, DEFAULT_LIMITS.max_image_bytes);
  await limits.refresh(client("http://b", null)); // a server from before /v1/models stated its limits
  assert.equal(limits.maxImageBytes, DEFAULT_LIMITS.max_image_bytes);
  assert.equal(area.items.serverLimits.serverUrl, "http://a");
});

test("an answer from a server no longer in use counts for nothing", async () => {
  const limits = new ServerLimits();
  const old = client("http://a", { max_image_bytes: 10 });
  await limits.use(client("http://b", { max_image_bytes: 20 }));
  await limits.refresh(old);
  await sleep(0);
  assert.equal(limits.maxImageBytes, 20);
});
