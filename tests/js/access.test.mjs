// What keeps badges off a page for lack of access, and the image hosts a tab could not read.
import assert from "node:assert/strict";
import { test } from "node:test";

import { installFakeBrowser } from "./fake-browser.mjs";

const fake = installFakeBrowser();
const { blockedFor, forgetBlocked, missingAccess, noteBlocked } = await import("../../extension/background/access.js");

const contains = async ({ origins }) => origins.every((origin) => fake.granted.has(origin));
const settings = { autoMode: true, sites: ["bbc.co.uk", "news.example"] };

test("a listed site without access: the site and the hosts its pictures come from, in one request", async () => {
  fake.granted = new Set();
  const missing = await missingAccess({ host: "www.bbc.co.uk", settings, contains });
  assert.equal(missing.site, "bbc.co.uk");
  assert.equal(missing.siteMissing, true);
  assert.deepEqual(missing.imageHosts, ["ichef.bbci.co.uk"]);
  assert.deepEqual(missing.origins, [
    "*://bbc.co.uk/*",
    "*://*.bbc.co.uk/*",
    "*://ichef.bbci.co.uk/*",
    "*://*.ichef.bbci.co.uk/*",
  ]);
});

test("a granted site whose images came from a host without access: exactly that host", async () => {
  fake.granted = new Set(["https://news.example/*"]);
  const blocked = [{ origin: "https://cdn.elsewhere.example/*", images: 3 }];
  const missing = await missingAccess({ host: "news.example", settings, contains, blocked });
  assert.equal(missing.siteMissing, false);
  assert.deepEqual(missing.imageHosts, []);
  assert.deepEqual(missing.origins, ["https://cdn.elsewhere.example/*"]);
  assert.deepEqual(missing.blocked, blocked);

  fake.granted.add("https://cdn.elsewhere.example/*"); // granted since: nothing is missing any more
  assert.deepEqual((await missingAccess({ host: "news.example", settings, contains, blocked })).origins, []);
});

test("a site without automatic badges lacks nothing but the image hosts a right-click could not read", async () => {
  fake.granted = new Set();
  const quiet = await missingAccess({ host: "blog.example", settings, contains });
  assert.deepEqual([quiet.auto, quiet.siteMissing, quiet.origins], [false, false, []]);
  const blocked = [{ origin: "http://img.example/*", images: 1 }];
  assert.deepEqual((await missingAccess({ host: "blog.example", settings, contains, blocked })).origins, ["http://img.example/*"]);
});

test("refused image hosts are kept per tab and page, counted per image, and forgotten", async () => {
  const page = "https://news.example/today";
  await Promise.all([
    noteBlocked(7, page, "https://cdn.example/a.jpg"),
    noteBlocked(7, page, "https://cdn.example/b.jpg"),
    noteBlocked(7, page, "https://cdn.example/a.jpg"),
    noteBlocked(7, page, "http://img.other.example/c.png"),
    noteBlocked(8, "https://daily.example/", "https://cdn.example/z.jpg"),
  ]);
  assert.deepEqual(await blockedFor(7, page), [
    { origin: "https://cdn.example/*", images: 2 },
    { origin: "http://img.other.example/*", images: 1 },
  ]);
  // Kept where the worker's memory would not survive it being stopped.
  assert.ok((await fake.storage.session.get("blockedImageHosts")).blockedImageHosts[7]);
  assert.deepEqual(await blockedFor(7, "https://daily.example/"), [], "another page in the tab: not its hosts");
  await noteBlocked(7, "https://daily.example/", "https://cdn.example/y.jpg");
  assert.deepEqual(await blockedFor(7, "https://daily.example/"), [{ origin: "https://cdn.example/*", images: 1 }]);
  await forgetBlocked(7);
  assert.deepEqual(await blockedFor(7, "https://daily.example/"), []);
  assert.equal((await blockedFor(8, "https://daily.example/")).length, 1);
});
