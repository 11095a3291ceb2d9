// Where the content script runs. Automatic checking is on for the listed sites (when automatic mode is on)
// and only where the user granted access; the script is registered for exactly those sites, and injected
// on demand (through activeTab) for a right-click check or a site switched on from the popup.
import { ext } from "./browser.js";
import { siteForHost, sitePatterns } from "./settings.js";

export const CONTENT_SCRIPT_ID = "realcheck-auto";
export const CONTENT_FILES = ["content/overlay.js", "content/finder.js", "content/main.js"];

/** The host of a page URL, or "" for pages that are not http(s) (the browser's own pages, files, ...). */
export function pageHost(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.hostname : "";
  } catch {
    return "";
  }
}

/** True when automatic badges should run on the page at `url`. */
export function autoCheckOn(url, settings) {
  const host = pageHost(url);
  return Boolean(host && settings.autoMode && siteForHost(host, settings.sites));
}

/** The match patterns of `site` the extension has access to, scheme by scheme (http only is common locally). */
export async function grantedPatterns(site) {
  const granted = [];
  for (const pattern of sitePatterns(site)) {
    for (const scheme of ["http", "https"]) {
      const specific = pattern.replace(/^\*:/, `${scheme}:`);
      try {
        if (await ext.permissions.contains({ origins: [specific] })) granted.push(specific);
      } catch {
        // An invalid pattern grants nothing.
      }
    }
  }
  return granted;
}

/** True when the extension may read pages and images of `site` (over http or https). */
export async function siteAccess(site) {
  return (await grantedPatterns(site)).length > 0;
}

let syncing = Promise.resolve();

/** Register the content script for the listed sites that have access (none when automatic mode is off). */
export function syncContentScripts(settings) {
  syncing = syncing.then(async () => {
    const matches = [];
    if (settings.autoMode) {
      for (const site of settings.sites) matches.push(...(await grantedPatterns(site)));
    }
    const registered = await ext.scripting.getRegisteredContentScripts({ ids: [CONTENT_SCRIPT_ID] });
    if (registered.length) await ext.scripting.unregisterContentScripts({ ids: [CONTENT_SCRIPT_ID] });
    if (matches.length) {
      await ext.scripting.registerContentScripts([
        { id: CONTENT_SCRIPT_ID, matches, js: CONTENT_FILES, runAt: "document_idle", allFrames: false },
      ]);
    }
    return matches;
  });
  syncing = syncing.catch((error) => console.warn("RealCheck: content script registration failed", error));
  return syncing;
}

/** Make sure the content script runs in a tab's frame (injecting it needs activeTab or site access). */
export async function ensureContentScript(tabId, frameId = 0) {
  try {
    const answer = await ext.tabs.sendMessage(tabId, { type: "ping" }, { frameId });
    if (answer?.ok) return true;
  } catch {
    // No content script there yet.
  }
  await ext.scripting.executeScript({ target: { tabId, frameIds: [frameId] }, files: CONTENT_FILES });
  return true;
}
