// Where the content script runs. Automatic checking is on for the listed sites (when automatic mode is on)
// and only where the user granted access; the script is registered for exactly those sites, started in the
// tabs already open on them, and injected on demand (through activeTab) for a right-click check or a site
// switched on from the popup.
import { ext } from "../shared/browser.js";
import { MSG } from "../shared/message-types.js";
import { getSettings, siteForHost } from "../shared/settings.js";
import { grantedPatterns, pageHost } from "../shared/site-access.js";
import { CONTENT_FILES } from "../content/parts.js";

export const CONTENT_SCRIPT_ID = "realcheck-auto";


/** True when automatic badges should run on the page at `url`. */
export function autoCheckOn(url, settings) {
  const host = pageHost(url);
  return Boolean(host && settings.autoMode && siteForHost(host, settings.sites));
}

let syncing = Promise.resolve({ matches: [], changed: false });

function sameList(a = [], b = []) {
  const left = [...a].sort();
  const right = [...b].sort();
  return left.length === right.length && left.every((item, index) => item === right[index]);
}

/**
 * Register the content script for the listed sites that have access (none when automatic mode is off), from
 * the settings as they are when it runs, so calls made in quick succession never leave stale ones behind. An
 * existing registration is updated in place, never removed and re-added: a page that loads in between would
 * otherwise get no content script and show no badges until reloaded. Resolves to {matches, changed}.
 */
export function syncContentScripts() {
  const run = syncing.then(async () => {
    const settings = await getSettings();
    const matches = [];
    if (settings.autoMode) {
      for (const site of settings.sites) matches.push(...(await grantedPatterns(site)));
    }
    const [registered] = await ext.scripting.getRegisteredContentScripts({ ids: [CONTENT_SCRIPT_ID] });
    const script = { id: CONTENT_SCRIPT_ID, matches, js: CONTENT_FILES, runAt: "document_idle", allFrames: false };
    if (!matches.length) {
      if (registered) await ext.scripting.unregisterContentScripts({ ids: [CONTENT_SCRIPT_ID] });
      return { matches, changed: Boolean(registered) };
    }
    if (!registered) {
      await ext.scripting.registerContentScripts([script]);
      return { matches, changed: true };
    }
    if (sameList(registered.matches, matches) && sameList(registered.js, CONTENT_FILES)) {
      return { matches, changed: false };
    }
    await ext.scripting.updateContentScripts([script]);
    return { matches, changed: true };
  });
  syncing = run.catch((error) => {
    console.warn("RealCheck: content script registration failed", error);
    return { matches: [], changed: false };
  });
  return syncing;
}

/** Make sure the content script runs in a tab's frame (injecting it needs activeTab or site access). */
export async function ensureContentScript(tabId, frameId = 0) {
  try {
    const answer = await ext.tabs.sendMessage(tabId, { type: MSG.workerToTab.ping }, { frameId });
    if (answer?.ok) return "running";
  } catch {
    // No content script there yet.
  }
  await ext.scripting.executeScript({ target: { tabId, frameIds: [frameId] }, files: CONTENT_FILES });
  return "started";
}

/**
 * Start the content script in open tabs that `matches` cover and that lack it: pages opened before access was
 * granted, or while the registration was being made, get badges without a reload. Resolves to how many started.
 */
export async function startInOpenTabs(matches) {
  if (!matches.length) return 0;
  const tabs = await ext.tabs.query({ url: matches }).catch(() => []);
  const outcomes = await Promise.all(
    tabs
      .filter((tab) => tab.id !== undefined && !tab.discarded)
      .map((tab) => ensureContentScript(tab.id, 0).catch(() => "unreachable")),
  );
  return outcomes.filter((outcome) => outcome === "started").length;
}
