// The toolbar popup: automatic badges on/off for the current site in one click, access grants, status.
import { ext } from "../background/browser.js";
import { sitePatterns } from "../background/settings.js";

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
  $("access-row").hidden = !(state.auto && !state.access);
  $("blocked-section").hidden = state.blocked.length === 0;
  $("blocked-list").replaceChildren(
    ...state.blocked.map((pattern) => {
      const item = document.createElement("li");
      item.textContent = pattern.replace(/\/\*$/, "");
      return item;
    }),
  );
  $("server").textContent = state.serverUrl;
  const serverState = $("server-state");
  serverState.textContent = state.serverUnavailable ? "(unavailable, retrying)" : "";
  serverState.dataset.ok = String(!state.serverUnavailable);
}

async function refresh() {
  show(await ext.runtime.sendMessage({ type: "popup-state", tabId }));
}

$("site-toggle").addEventListener("change", async (event) => {
  const on = event.target.checked;
  // Ask for access first, while the click still counts as a user gesture.
  if (on && !current.access) await ext.permissions.request({ origins: sitePatterns(current.site) }).catch(() => false);
  show(await ext.runtime.sendMessage({ type: "set-site", tabId, site: current.site, on }));
});

$("allow-site").addEventListener("click", async () => {
  await ext.permissions.request({ origins: sitePatterns(current.site) }).catch(() => false);
  show(await ext.runtime.sendMessage({ type: "set-site", tabId, site: current.site, on: true }));
});

$("allow-blocked").addEventListener("click", async () => {
  await ext.permissions.request({ origins: current.blocked }).catch(() => false);
  await refresh();
});

$("open-options").addEventListener("click", () => ext.runtime.openOptionsPage());

currentTabId().then((id) => {
  tabId = id;
  return refresh();
});
