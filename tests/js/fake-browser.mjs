// A fake of the WebExtension APIs the worker's site and access modules use: storage, permissions, scripting
// and tabs, recording what was called. Install it before importing those modules (they read it at import).

export function installFakeBrowser({ settings = {}, granted = [] } = {}) {
  const calls = [];
  const local = { settings: { ...settings } };
  const session = {};
  const fake = {
    calls,
    granted: new Set(granted),
    registered: null, // the one registered content script, or null
    storage: {
      local: {
        get: async (key) => ({ [key]: local[key] }),
        set: async (items) => Object.assign(local, items),
      },
      session: {
        get: async (key) => ({ [key]: structuredClone(session[key]) }),
        set: async (items) => Object.assign(session, structuredClone(items)),
      },
      onChanged: { addListener: () => {} },
    },
    permissions: {
      contains: async ({ origins }) => origins.every((origin) => fake.granted.has(origin)),
    },
    scripting: {
      getRegisteredContentScripts: async ({ ids }) =>
        fake.registered && ids.includes(fake.registered.id) ? [structuredClone(fake.registered)] : [],
      registerContentScripts: async ([script]) => {
        calls.push(["register", script.matches]);
        if (fake.registered) throw new Error(`Duplicate script ID '${script.id}'`);
        fake.registered = structuredClone(script);
      },
      updateContentScripts: async ([script]) => {
        calls.push(["update", script.matches]);
        fake.registered = { ...fake.registered, ...structuredClone(script) };
      },
      unregisterContentScripts: async () => {
        calls.push(["unregister"]);
        fake.registered = null;
      },
      executeScript: async ({ target }) => {
        calls.push(["inject", target.tabId]);
        fake.openTabs.find((tab) => tab.id === target.tabId).running = true;
      },
    },
    tabs: {
      query: async ({ url }) => {
        const covers = (pattern, tabUrl) => {
          const [, scheme, host] = /^([a-z*]+):\/\/([^/]+)\//.exec(pattern);
          const parsed = new URL(tabUrl);
          const schemeOk = scheme === "*" ? /^https?:$/.test(parsed.protocol) : parsed.protocol === `${scheme}:`;
          const hostOk = host.startsWith("*.") ? parsed.hostname.endsWith(host.slice(1)) : parsed.hostname === host;
          return schemeOk && hostOk;
        };
        return fake.openTabs.filter((tab) => url.some((pattern) => covers(pattern, tab.url)));
      },
      sendMessage: async (tabId) => {
        if (!fake.openTabs.find((tab) => tab.id === tabId)?.running) throw new Error("Receiving end does not exist.");
        return { ok: true };
      },
    },
    openTabs: [], // {id, url, running}
    setSettings: (changes) => Object.assign(local.settings, changes),
  };
  globalThis.chrome = fake;
  return fake;
}
