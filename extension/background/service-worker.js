// RealCheck's background: the only place that talks to the network (image downloads and the RealCheck
// server). Listeners are registered synchronously at the top level, as MV3 requires for a worker that is
// started by the event it must handle; state that outlives the worker lives in chrome.storage.
import { blockedFor, forgetBlocked, missingAccess, noteBlocked } from "./access.js";
import { ServerClient } from "./api.js";
import { ext } from "../shared/browser.js";
import { ResultCache } from "./cache.js";
import { Checker } from "./checker.js";
import { reportFeedback, UserLabels } from "./feedback.js";
import { ServerLimits } from "./limits.js";
import { CHECK_IMAGE_MENU, createMenus } from "./menus.js";
import { MSG, PAGE_PORT } from "../shared/message-types.js";
import { PageSessions, showServerState } from "./pages.js";
import { getSettings, onSettingsChanged, originPattern, saveSettings, siteForHost, normaliseSite } from "../shared/settings.js";
import { pageHost, siteAccess } from "../shared/site-access.js";
import { autoCheckOn, ensureContentScript, startInOpenTabs, syncContentScripts } from "./sites.js";

const WELCOME_PAGE = "welcome/welcome.html";

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
  const labels = new UserLabels(ext.storage.local);
  const client = new ServerClient(settings);
  const limits = new ServerLimits(ext.storage.local);
  await limits.use(client);
  const checker = new Checker({
    client,
    cache,
    hasAccess,
    limits,
    onServerState: showServerState,
    onModelChanged: () => {
      sessions.broadcastRecheck("all");
      limits.refresh(checker.client); // a new model may come with a new server configuration
    },
  });
  const sessions = new PageSessions({
    checker,
    settings: getSettings,
    onBlocked: (tabId, pageUrl, imageUrl) => noteBlocked(tabId, pageUrl, imageUrl),
    onNewPage: (tabId) => forgetBlocked(tabId),
    labels,
    onFeedback: (report) =>
      reportFeedback({ client: checker.client, labels, maxBytes: limits.maxImageBytes, ...report }),
  });
  return { checker, sessions, cache, limits };
})();

// Expose the running state to the browser's devtools and to the tests (which drive the worker directly).
globalThis.realcheck = { state, getSettings, saveSettings, applyAccess };

/**
 * Bring the content script's registration in line with the settings and the grants, then start it in the tabs
 * already open on those sites (a page may have loaded before the grant, or while the registration was made).
 */
async function applyAccess() {
  const { matches } = await syncContentScripts();
  const started = await startInOpenTabs(matches);
  return { matches, started };
}

ext.runtime.onInstalled.addListener(async (details) => {
  // The first run: a page that says what is sent where and asks, once, for the sites and their image hosts.
  if (details.reason === "install") ext.tabs.create({ url: ext.runtime.getURL(WELCOME_PAGE) }).catch(() => {});
  await createMenus();
  await applyAccess();
});

ext.runtime.onStartup.addListener(async () => {
  await createMenus();
  await applyAccess();
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
    await ext.tabs.sendMessage(tabId, { type: MSG.workerToTab.manualCheck, url }, { frameId });
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
  const site = listed ?? (host ? normaliseSite(host) : "");
  const blocked = tabId === undefined ? [] : await blockedFor(tabId, tab?.url ?? "");
  const contains = (permissions) => ext.permissions.contains(permissions);
  return {
    host,
    site,
    listed: Boolean(listed),
    autoMode: settings.autoMode,
    auto: autoCheckOn(tab?.url ?? "", settings),
    access: host ? await siteAccess(site) : false,
    // Why this page shows no badges, if access is why: what is missing, and the one request that grants it.
    missing: host ? await missingAccess({ host, settings, blocked, contains }) : null,
    serverUrl: settings.serverUrl,
    serverUnavailable: checker.serverUnavailable,
    // How good the served model is, in the server's own words (from the model's measured rates).
    accuracy: await checker.client
      .model()
      .then((model) => model.accuracy_statement ?? null)
      .catch(() => null),
  };
}

async function setSite(tabId, site, on) {
  const settings = await getSettings();
  const sites = settings.sites.filter((entry) => entry !== site);
  if (on) sites.push(site);
  await saveSettings({ sites, ...(on ? { autoMode: true } : {}) });
  await applyAccess();
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

// What the extension's own pages may ask, by type.
const PAGE_REQUESTS = {
  [MSG.extensionPageToWorker.popupState]: (message) => popupState(message.tabId),
  [MSG.extensionPageToWorker.setSite]: (message) =>
    setSite(message.tabId, normaliseSite(message.site), Boolean(message.on)),
  [MSG.extensionPageToWorker.testConnection]: (message) => testConnection(message.serverUrl, message.apiKey ?? ""),
  // After a grant from the welcome page or the popup (permissions.onAdded does the same, but a page that asks
  // can wait for it and say what changed).
  [MSG.extensionPageToWorker.applyAccess]: async () => {
    const applied = await applyAccess();
    (await state).sessions.broadcastRecheck("failed");
    return applied;
  },
};

ext.runtime.onMessage.addListener((message, sender, sendResponse) => {
  // Only the extension's own pages (popup, options) may change settings or probe servers.
  if (sender.id !== ext.runtime.id || /^https?:/.test(sender.url ?? sender.tab?.url ?? "")) return false;
  if (!Object.hasOwn(PAGE_REQUESTS, message?.type)) return false;
  PAGE_REQUESTS[message.type](message).then(sendResponse, (error) =>
    sendResponse({ error: String(error?.message ?? error) }),
  );
  return true; // answered asynchronously
});

onSettingsChanged(async (settings, previous) => {
  const { checker, sessions, limits } = await state;
  if (settings.serverUrl !== previous.serverUrl || settings.apiKey !== previous.apiKey) {
    const client = new ServerClient(settings);
    await limits.use(client);
    checker.setClient(client);
    sessions.broadcastRecheck("failed");
  }
  await applyAccess();
  await sessions.broadcastConfig();
});

ext.permissions.onAdded.addListener(async () => {
  await applyAccess();
  (await state).sessions.broadcastRecheck("failed");
});

ext.permissions.onRemoved.addListener(() => syncContentScripts());

ext.tabs.onRemoved.addListener((tabId) => forgetBlocked(tabId));
