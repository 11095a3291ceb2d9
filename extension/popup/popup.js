// The toolbar popup: automatic badges on/off for the current site in one click, access grants, status. When
// the page shows no badges for lack of access, it says so plainly and offers to grant exactly what is missing.
import { ext } from "../shared/browser.js";
import { MSG } from "../shared/message-types.js";
import { accessOrigins } from "../shared/settings.js";

const $ = (id) => document.getElementById(id);
let tabId;
let current = null;

async function currentTabId() {
  // ?tabId= lets the popup be opened as a page for a given tab (keyboard users, tests).
  const fromQuery = Number(new URLSearchParams(location.search).get("tabId"));
  if (Number.isInteger(fromQuery) && fromQuery > 0) return fromQuery;
  const [tab] = await ext.tabs.query({ active: true, currentWindow: true });
  return tab?.id;
}

const hostOf = (pattern) => pattern.replace(/^[a-z*]+:\/\//, "").replace(/\/\*$/, "");
const plural = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;

function paragraph(text) {
  const element = document.createElement("p");
  element.textContent = text;
  return element;
}

/** Plain sentences for what keeps badges off this page, or [] when access is not the reason. */
function missingSentences(missing) {
  if (!missing) return [];
  const sentences = [];
  if (missing.siteMissing) sentences.push(`No badges on this page: RealCheck may not read ${missing.site}.`);
  if (missing.imageHosts.length) {
    const hosts = missing.imageHosts.join(", ");
    sentences.push(
      missing.siteMissing
        ? `Its pictures come from ${hosts}, which RealCheck may not read either.`
        : `No badges on this site's pictures: they come from ${hosts}, which RealCheck may not read.`,
    );
  }
  if (missing.blocked.length) {
    const images = missing.blocked.reduce((sum, entry) => sum + entry.images, 0);
    const hosts = missing.blocked.map((entry) => hostOf(entry.origin)).join(", ");
    sentences.push(`No badge on ${plural(images, "image")} of this page: they come from ${hosts}, which RealCheck may not read.`);
  }
  return sentences;
}

function show(state) {
  current = state;
  const toggle = $("site-toggle");
  $("host").textContent = state.host || "This page cannot be checked automatically";
  toggle.disabled = !state.host;
  toggle.checked = state.auto;
  let note = "";
  if (!state.host) note = "RealCheck works on web pages (http and https).";
  else if (state.listed && !state.autoMode) note = "Automatic mode is off everywhere; switching this on turns it back on.";
  else if (state.auto) note = `Images on ${state.site} are checked as they come into view.`;
  else note = "Only images you right-click are checked here.";
  $("site-note").textContent = note;
  const sentences = missingSentences(state.missing);
  $("missing-section").hidden = sentences.length === 0 || !state.missing.origins.length;
  $("missing-why").replaceChildren(...sentences.map(paragraph));
  const names = [...new Set((state.missing?.origins ?? []).map(hostOf).map((host) => host.replace(/^\*\./, "")))];
  $("grant-missing").textContent = `Allow ${names.join(", ")}`;
  $("server").textContent = state.serverUrl;
  const serverState = $("server-state");
  serverState.textContent = state.serverUnavailable ? "is not answering: start it with \"realcheck serve\" (RealCheck retries on its own)" : "";
  serverState.dataset.ok = String(!state.serverUnavailable);
  $("accuracy").textContent = state.accuracy ?? "";
}

async function refresh() {
  show(await ext.runtime.sendMessage({ type: MSG.extensionPageToWorker.popupState, tabId }));
}

$("site-toggle").addEventListener("change", async (event) => {
  const on = event.target.checked;
  // Ask first, while the click still counts as a user gesture: the site and the hosts its pictures come from.
  if (on && !current.access) await ext.permissions.request({ origins: accessOrigins([current.site]) }).catch(() => false);
  show(await ext.runtime.sendMessage({ type: MSG.extensionPageToWorker.setSite, tabId, site: current.site, on }));
});

$("grant-missing").addEventListener("click", async () => {
  const granted = await ext.permissions.request({ origins: current.missing.origins }).catch(() => false);
  // permissions.onAdded does this too; waiting for it here lets the popup show the page's new state.
  if (granted) await ext.runtime.sendMessage({ type: MSG.extensionPageToWorker.applyAccess });
  await refresh();
});

$("open-options").addEventListener("click", () => ext.runtime.openOptionsPage());

currentTabId().then((id) => {
  tabId = id;
  return refresh();
});
