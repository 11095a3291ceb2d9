// RealCheck's background: the only place that talks to the network (image downloads and the RealCheck
// server). Listeners are registered synchronously at the top level, as MV3 requires for a worker that is
// started by the event it must handle; state that outlives the worker lives in chrome.storage.
import { ServerClient } from "./api.js";
import { ext } from "./browser.js";
import { ResultCache } from "./cache.js";
import { Checker } from "./checker.js";
import { CHECK_IMAGE_MENU, createMenus } from "./menus.js";
import { PAGE_PORT, PageSessions } from "./pages.js";
import { getSettings, onSettingsChanged, originPattern, saveSettings, siteForHost, normaliseSite } from "./settings.js";
import { autoCheckOn, ensureContentScript, pageHost, siteAccess, syncContentScripts } from "./sites.js";

const blockedByTab = new Map(); // tabId -> Set of origin patterns whose images could not be read

async function hasAccess(url) {
  try {
    return await ext.permissions.contains({ origins: [originPattern(url)] });
  } catch {
    return false;
  }
}

const state = (async () => {
  const settings = await getSettings();
  const cache = await new ResultCache(ext.storage.session ?? null).load();
  const checker = new Checker({
    client: new ServerClient(settings),
    cache,
    hasAccess,
    onModelChanged: () => sessions.broadcastRecheck("all"),
  });
  const sessions = new PageSessions({
    checker,
    settings: getSettings,
    onBlocked: (tabId, url) => {
      if (tabId === undefined) return;
      const origins = blockedByTab.get(tabId) ?? new Set();
      origins.add(originPattern(url));
      blockedByTab.set(tabId, origins);
    },
  });
  return { checker, sessions, cache };
})();

// Expose the running state to the browser's devtools and to the tests (which drive the worker directly).
globalThis.realcheck = { state, getSettings, saveSettings };

ext.runtime.onInstalled.addListener(async (details) => {
  await createMenus();
  await syncContentScripts(await getSettings());
  if (details.reason === "install") ext.runtime.openOptionsPage().catch(() => {});
});

ext.runtime.onStartup.addListener(async () => {
  await createMenus();
  await syncContentScripts(await getSettings());
});

ext.runtime.onConnect.addListener((port) => {
  if (port.name !== PAGE_PORT) return;
  // Buffer until the state is ready; a worker woken by this connection is still loading its cache.
  const early = [];
  const buffer = (message) => early.push(message);
  port.onMessage.addListener(buffer);
  state.then(({ sessions }) => {
    port.onMessage.removeListener(buffer);
    sessions.connect(port);
    for (const message of early) sessions.receive(port, message);
  });
});

ext.contextMenus.onClicked.addListener((info, tab) => {
  if (info.menuItemId !== CHECK_IMAGE_MENU || tab?.id === undefined || !info.srcUrl) return;
  // Ask for the image host now, while the click still counts as a user gesture (Firefox honours that; where
  // the browser refuses, the popup offers the same). Granted hosts answer at once, without a prompt, and a new
  // grant reaches pages through permissions.onAdded, which re-checks what failed for lack of access.
  if (/^https?:/i.test(info.srcUrl)) {
    try {
      ext.permissions.request({ origins: [originPattern(info.srcUrl)] }).catch(() => {});
    } catch {
      // Not a user gesture here.
    }
  }
  manualCheck(tab.id, info.frameId ?? 0, info.srcUrl);
});

async function manualCheck(tabId, frameId, url) {
  const { checker } = await state;
  checker.retryNow(); // the user asked: do not make them wait out a backoff
  try {
    await ensureContentScript(tabId, frameId);
    await ext.tabs.sendMessage(tabId, { type: "manual-check", url }, { frameId });
  } catch (error) {
    console.warn("RealCheck: cannot show a verdict in this tab", error);
  }
}

async function popupState(tabId) {
  const settings = await getSettings();
  const { checker } = await state;
  const tab = tabId === undefined ? null : await ext.tabs.get(tabId).catch(() => null);
  const host = pageHost(tab?.url ?? "");
  const listed = host ? siteForHost(host, settings.sites) : null;
  return {
    host,
    site: listed ?? (host ? normaliseSite(host) : ""),
    listed: Boolean(listed),
    autoMode: settings.autoMode,
    auto: autoCheckOn(tab?.url ?? "", settings),
    access: host ? await siteAccess(listed ?? normaliseSite(host)) : false,
    blocked: [...(blockedByTab.get(tabId) ?? [])],
    serverUrl: settings.serverUrl,
    serverUnavailable: checker.serverUnavailable,
  };
}

async function setSite(tabId, site, on) {
  const settings = await getSettings();
  const sites = settings.sites.filter((entry) => entry !== site);
  if (on) sites.push(site);
  await saveSettings({ sites, ...(on ? { autoMode: true } : {}) });
  if (on && tabId !== undefined) {
    // The popup's click granted activeTab: start on this page now, not at its next load.
    await ensureContentScript(tabId, 0).catch(() => {});
  }
  const { sessions } = await state;
  await sessions.broadcastConfig();
  return popupState(tabId);
}

async function testConnection(serverUrl, apiKey) {
  const client = new ServerClient({ serverUrl, apiKey, timeoutMs: 10_000 });
  try {
    const model = await client.model();
    const ready = await client.ready().then(
      () => true,
      () => false,
    );
    (await state).checker.retryNow();
    return { ok: true, ready, model };
  } catch (error) {
    return { ok: false, status: error.status ?? 0, code: error.code ?? "error", message: error.message };
  }
}

ext.runtime.onMessage.addListener((message, sender, sendResponse) => {
  // Only the extension's own pages (popup, options) may change settings or probe servers.
  if (sender.id !== ext.runtime.id || /^https?:/.test(sender.url ?? sender.tab?.url ?? "")) return false;
  const handlers = {
    "popup-state": () => popupState(message.tabId),
    "set-site": () => setSite(message.tabId, normaliseSite(message.site), Boolean(message.on)),
    "test-connection": () => testConnection(message.serverUrl, message.apiKey ?? ""),
    "retry-now": async () => (await state).checker.retryNow(),
  };
  const handler = handlers[message?.type];
  if (!handler) return false;
  handler().then(sendResponse, (error) => sendResponse({ error: String(error?.message ?? error) }));
  return true; // answered asynchronously
});

onSettingsChanged(async (settings, previous) => {
  const { checker, sessions } = await state;
  if (settings.serverUrl !== previous.serverUrl || settings.apiKey !== previous.apiKey) {
    checker.setClient(new ServerClient(settings));
    sessions.broadcastRecheck("failed");
  }
  await syncContentScripts(settings);
  await sessions.broadcastConfig();
});

ext.permissions.onAdded.addListener(async () => {
  await syncContentScripts(await getSettings());
  (await state).sessions.broadcastRecheck("failed");
});

ext.permissions.onRemoved.addListener(async () => syncContentScripts(await getSettings()));

ext.tabs.onRemoved.addListener((tabId) => blockedByTab.delete(tabId));
