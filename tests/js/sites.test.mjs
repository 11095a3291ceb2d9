// Content-script registration per site, and tabs already open when access arrives.
import assert from "node:assert/strict";
import { test } from "node:test";

import { installFakeBrowser } from "./fake-browser.mjs";

const fake = installFakeBrowser({ settings: { sites: ["news.example"], autoMode: true } });
const { startInOpenTabs, syncContentScripts } = await import("../../extension/background/sites.js");

test("the registration follows the grants in place: never removed and added back while sites remain", async () => {
  fake.calls.length = 0;
  assert.deepEqual((await syncContentScripts()).matches, []);
  assert.deepEqual(fake.calls, [], "nothing granted: nothing registered");

  fake.granted.add("https://news.example/*");
  assert.deepEqual(await syncContentScripts(), { matches: ["https://news.example/*"], changed: true });
  assert.deepEqual(await syncContentScripts(), { matches: ["https://news.example/*"], changed: false });

  // A second site: the registration is updated, so pages of the first one never find it missing.
  fake.setSettings({ sites: ["news.example", "daily.example"] });
  fake.granted.add("https://*.daily.example/*");
  const { matches } = await syncContentScripts();
  assert.deepEqual(matches.sort(), ["https://*.daily.example/*", "https://news.example/*"]);
  assert.deepEqual(fake.registered.matches.sort(), matches);

  fake.setSettings({ autoMode: false });
  await syncContentScripts();
  assert.equal(fake.registered, null);
  assert.deepEqual(
    fake.calls.map(([call]) => call),
    ["register", "update", "unregister"],
  );
});

test("calls in quick succession end with the settings as they are, whatever each caller saw", async () => {
  fake.setSettings({ autoMode: true, sites: ["news.example"] });
  const first = syncContentScripts();
  fake.setSettings({ sites: ["news.example", "daily.example"] }); // changed while the first call is queued
  const second = syncContentScripts();
  await Promise.all([first, second]);
  assert.deepEqual(fake.registered.matches.sort(), ["https://*.daily.example/*", "https://news.example/*"]);
});

test("tabs already open on a granted site get the content script once; others are left alone", async () => {
  fake.calls.length = 0;
  fake.openTabs = [
    { id: 1, url: "https://news.example/today", running: false },
    { id: 2, url: "https://news.example/other", running: true },
    { id: 3, url: "https://elsewhere.example/", running: false },
    { id: 4, url: "https://www.daily.example/a", running: false },
  ];
  const started = await startInOpenTabs(["https://news.example/*", "https://*.daily.example/*"]);
  assert.equal(started, 2);
  assert.deepEqual(fake.calls, [["inject", 1], ["inject", 4]]);
  assert.equal(await startInOpenTabs(["https://news.example/*", "https://*.daily.example/*"]), 0, "already running");
  assert.equal(await startInOpenTabs([]), 0);
});
