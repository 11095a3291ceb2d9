// The message protocol (shared/messages.js): every type one part sends is handled by the part it goes to, every
// type defined is used, and no message type is spelled anywhere else.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";

import { installFakeBrowser } from "./fake-browser.mjs";

installFakeBrowser();
const { MSG, PAGE_PORT } = await import("../../extension/shared/message-types.js");
const { PageSessions } = await import("../../extension/background/pages.js");

const ROOT = new URL("../../extension/", import.meta.url);
const SOURCES = new Map(
  ["background", "content", "popup", "options", "welcome"].flatMap((folder) =>
    readdirSync(new URL(folder, ROOT))
      .filter((name) => name.endsWith(".js"))
      .map((name) => [`${folder}/${name}`, readFileSync(new URL(`${folder}/${name}`, ROOT), "utf8")]),
  ),
);

// Who sends and who handles each channel's messages.
const CHANNELS = {
  pageToWorker: { senders: /^content\//, handlers: /^background\/pages\.js$/ },
  workerToPage: { senders: /^background\/pages\.js$/, handlers: /^content\// },
  workerToTab: { senders: /^background\//, handlers: /^content\// },
  extensionPageToWorker: { senders: /^(popup|options|welcome)\//, handlers: /^background\/service-worker\.js$/ },
};

/** "channel.name" -> the files where `pattern` (capturing channel and name) matches. */
function references(pattern) {
  const found = new Map();
  for (const [file, source] of SOURCES) {
    for (const [, channel, name] of source.matchAll(pattern)) {
      const key = `${channel}.${name}`;
      found.set(key, [...(found.get(key) ?? []), file]);
    }
  }
  return found;
}

// A message is sent as an object literal `{ type: MSG.channel.name, ... }`; a handler is a table entry
// `[MSG.channel.name]: ...`.
const sent = references(/\btype: MSG\.(\w+)\.(\w+)/g);
const handled = references(/\[MSG\.(\w+)\.(\w+)\]:/g);
const defined = Object.entries(MSG).flatMap(([channel, types]) => Object.keys(types).map((name) => `${channel}.${name}`));

test("every message type is sent by its channel's sender and handled by its receiver", () => {
  assert.deepEqual(Object.keys(MSG).sort(), Object.keys(CHANNELS).sort());
  for (const key of defined) {
    const { senders, handlers } = CHANNELS[key.split(".")[0]];
    assert.ok(sent.get(key)?.some((file) => senders.test(file)), `${key} is never sent by ${senders}`);
    assert.ok(handled.get(key)?.some((file) => handlers.test(file)), `${key} is never handled by ${handlers}`);
  }
  for (const key of [...sent.keys(), ...handled.keys()]) assert.ok(defined.includes(key), `${key} is not defined`);
});

test("message types and the port's name are spelled only in shared/messages.js", () => {
  for (const [file, source] of SOURCES) {
    // Neither sent nor compared as a literal: `type: "..."`, `message.type === "..."`.
    assert.doesNotMatch(source, /\btype: ["'`]|\bmessage\??\.type\s*[!=]==?\s*["'`]/, `${file} spells a message type`);
    assert.ok(!source.includes(PAGE_PORT), `${file} spells the port's name`);
  }
});

test("the worker's page sessions handle exactly the types a page sends", () => {
  const sessions = new PageSessions({ checker: null, settings: async () => ({}) });
  assert.deepEqual(Object.keys(sessions.handlers).sort(), Object.values(MSG.pageToWorker).sort());
});
