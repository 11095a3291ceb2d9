// Settings: defaults, validation and storage. Everything lives under one key in storage.local so the
// options page, the popup and the service worker see one consistent object and one change event.
import { ext } from "./browser.js";

export const SETTINGS_KEY = "settings";
export const DEFAULT_SERVER_URL = "http://127.0.0.1:8000";

// Major news sites where automatic badges are on out of the box (the user can edit the list).
export const DEFAULT_SITES = Object.freeze([
  "apnews.com",
  "reuters.com",
  "bbc.com",
  "bbc.co.uk",
  "nytimes.com",
  "washingtonpost.com",
  "wsj.com",
  "theguardian.com",
  "cnn.com",
  "nbcnews.com",
  "cbsnews.com",
  "abcnews.go.com",
  "npr.org",
  "foxnews.com",
  "usatoday.com",
  "bloomberg.com",
  "ft.com",
  "economist.com",
  "aljazeera.com",
  "dw.com",
  "france24.com",
  "lemonde.fr",
  "spiegel.de",
  "elpais.com",
]);

// Where the default news sites' pictures come from, when that is not the site itself or a subdomain of it
// (those the site's own access covers): without these hosts, a site's page shows no badges at all.
export const DEFAULT_IMAGE_HOSTS = Object.freeze({
  "bbc.com": ["ichef.bbci.co.uk"],
  "bbc.co.uk": ["ichef.bbci.co.uk"],
  "nytimes.com": ["static01.nyt.com"],
  "wsj.com": ["images.wsj.net"],
  "theguardian.com": ["i.guim.co.uk"],
  "nbcnews.com": ["media-cldnry.s-nbcnews.com"],
  "cbsnews.com": ["cbsnewsstatic.com"],
  "abcnews.go.com": ["s.abcnews.com", "i.abcnewsfe.com"],
  "npr.org": ["npr.brightspotcdn.com"],
  "usatoday.com": ["gannett-cdn.com"],
  "bloomberg.com": ["assets.bwbx.io"],
  "lemonde.fr": ["img.lemde.fr"],
});

export const BADGE_STYLES = Object.freeze(["full", "compact"]);

export const DEFAULTS = Object.freeze({
  serverUrl: DEFAULT_SERVER_URL,
  apiKey: "",
  autoMode: true,
  sites: DEFAULT_SITES,
  badgeStyle: "full",
  blurFlagged: false,
});

/** The server URL without a trailing slash; throws a readable Error for anything but http(s). */
export function normaliseServerUrl(text) {
  const trimmed = String(text ?? "").trim() || DEFAULT_SERVER_URL;
  let url;
  try {
    url = new URL(trimmed);
  } catch {
    throw new Error(`"${trimmed}" is not a URL; use something like ${DEFAULT_SERVER_URL}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error("the server URL must start with http:// or https://");
  }
  return (url.origin + url.pathname).replace(/\/+$/, "");
}

/** A site entry as stored: lower-case host name without scheme, port, path or a leading "www.". */
export function normaliseSite(text) {
  let value = String(text ?? "").trim().toLowerCase();
  if (!value) return "";
  if (!/^[a-z][a-z0-9+.-]*:\/\//.test(value)) value = `http://${value}`;
  let host;
  try {
    host = new URL(value).hostname;
  } catch {
    return "";
  }
  return host.replace(/^www\./, "").replace(/\.$/, "");
}

/** Sites from free text (one per line, or separated by commas or spaces), normalised and de-duplicated. */
export function parseSites(text) {
  const seen = new Set();
  for (const part of String(text ?? "").split(/[\s,]+/)) {
    const site = normaliseSite(part);
    if (site) seen.add(site);
  }
  return [...seen];
}

/** The entry of `sites` that covers `host` (the site itself or any subdomain of it), else null. */
export function siteForHost(host, sites) {
  const name = String(host ?? "").toLowerCase().replace(/\.$/, "");
  if (!name) return null;
  for (const site of sites) {
    if (name === site || name.endsWith(`.${site}`)) return site;
  }
  return null;
}

function isAddress(host) {
  return /^[\d.]+$/.test(host) || host.includes(":") || host === "localhost";
}

/** Match patterns for a site entry: the host and its subdomains, any scheme (ports always match). */
export function sitePatterns(site) {
  if (isAddress(site)) return [`*://${site.includes(":") ? `[${site}]` : site}/*`];
  return [`*://${site}/*`, `*://*.${site}/*`];
}

/** The image hosts known for `sites` (see DEFAULT_IMAGE_HOSTS), de-duplicated. */
export function imageHostsFor(sites) {
  return [...new Set(sites.flatMap((site) => DEFAULT_IMAGE_HOSTS[site] ?? []))];
}

/** Everything automatic badges on `sites` need, as one list of match patterns: the sites and their image hosts. */
export function accessOrigins(sites) {
  return [...new Set([...sites, ...imageHostsFor(sites)].flatMap(sitePatterns))];
}

/** The match pattern that grants access to one origin (scheme and host; ports always match). */
export function originPattern(url) {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.hostname.includes(":") ? `[${parsed.hostname}]` : parsed.hostname}/*`;
}

function clean(raw) {
  const settings = { ...DEFAULTS, ...(raw ?? {}) };
  try {
    settings.serverUrl = normaliseServerUrl(settings.serverUrl);
  } catch {
    settings.serverUrl = DEFAULT_SERVER_URL;
  }
  settings.apiKey = String(settings.apiKey ?? "").trim();
  settings.autoMode = Boolean(settings.autoMode);
  settings.sites = Array.isArray(settings.sites) ? parseSites(settings.sites.join("\n")) : [...DEFAULT_SITES];
  if (!BADGE_STYLES.includes(settings.badgeStyle)) settings.badgeStyle = DEFAULTS.badgeStyle;
  settings.blurFlagged = Boolean(settings.blurFlagged);
  return settings;
}

/** The current settings, defaults filled in. */
export async function getSettings() {
  const stored = await ext.storage.local.get(SETTINGS_KEY);
  return clean(stored[SETTINGS_KEY]);
}

/** Merge `changes` into the stored settings (validated) and return the result. */
export async function saveSettings(changes) {
  const current = await getSettings();
  const next = clean({ ...current, ...changes });
  if (changes.serverUrl !== undefined) next.serverUrl = normaliseServerUrl(changes.serverUrl);
  await ext.storage.local.set({ [SETTINGS_KEY]: next });
  return next;
}

/** Call `listener(newSettings, oldSettings)` whenever the stored settings change. */
export function onSettingsChanged(listener) {
  ext.storage.onChanged.addListener((changes, area) => {
    if (area === "local" && changes[SETTINGS_KEY]) {
      listener(clean(changes[SETTINGS_KEY].newValue), clean(changes[SETTINGS_KEY].oldValue));
    }
  });
}
