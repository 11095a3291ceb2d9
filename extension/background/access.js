// What keeps automatic badges off a page for lack of access: the page's own site, the hosts its pictures are
// known to come from (DEFAULT_IMAGE_HOSTS), and the hosts whose images the worker could not read there. Those
// refused hosts are kept per tab in storage.session, since the worker may be stopped between a page's checks
// and the popup's question; they are forgotten when the tab shows another page or closes.
import { ext } from "../shared/browser.js";
import { imageHostsFor, normaliseSite, originPattern, siteForHost, sitePatterns } from "../shared/settings.js";
import { pageHost, siteAccess } from "../shared/site-access.js";

const BLOCKED_KEY = "blockedImageHosts";
const MAX_URLS_PER_ORIGIN = 100;

let writing = Promise.resolve();

async function readBlocked() {
  try {
    return (await ext.storage.session.get(BLOCKED_KEY))[BLOCKED_KEY] ?? {};
  } catch {
    return {};
  }
}

/** Apply `change(all)` to the stored {tabId: {host, origins: {pattern: [image URLs]}}}, one change at a time. */
function changeBlocked(change) {
  writing = writing
    .then(async () => {
      const all = await readBlocked();
      change(all);
      await ext.storage.session.set({ [BLOCKED_KEY]: all });
    })
    .catch((error) => console.warn("RealCheck: cannot note refused image hosts", error));
  return writing;
}

/** Note that the page in `tabId` (at `pageUrl`) has an image at `imageUrl` the extension may not read. */
export function noteBlocked(tabId, pageUrl, imageUrl) {
  return changeBlocked((all) => {
    const host = pageHost(pageUrl);
    if (all[tabId]?.host !== host) all[tabId] = { host, origins: {} };
    const pattern = originPattern(imageUrl);
    const urls = all[tabId].origins[pattern] ?? [];
    if (!urls.includes(imageUrl) && urls.length < MAX_URLS_PER_ORIGIN) urls.push(imageUrl);
    all[tabId].origins[pattern] = urls;
  });
}

/** Forget what was refused in a tab (it shows a new page, or it closed). */
export function forgetBlocked(tabId) {
  return changeBlocked((all) => {
    delete all[tabId];
  });
}

/** The refused image hosts of the page now in `tabId`: [{origin, images}] (images: how many of its images). */
export async function blockedFor(tabId, pageUrl) {
  await writing;
  const entry = (await readBlocked())[tabId];
  if (!entry || entry.host !== pageHost(pageUrl)) return [];
  return Object.entries(entry.origins).map(([origin, urls]) => ({ origin, images: urls.length }));
}

async function granted(pattern, contains) {
  try {
    return await contains({ origins: [pattern] });
  } catch {
    return false;
  }
}

/**
 * What the page on `host` lacks: {site, auto, siteMissing, imageHosts (known image hosts not granted),
 * blocked (refused hosts still not granted, as [{origin, images}]), origins (all of it, for one
 * permissions.request)}. `contains` is permissions.contains.
 */
export async function missingAccess({ host, settings, blocked = [], contains }) {
  const listed = siteForHost(host, settings.sites);
  const site = listed ?? normaliseSite(host);
  const auto = Boolean(listed && settings.autoMode);
  const siteMissing = auto && !(await siteAccess(site, contains));
  const imageHosts = [];
  if (auto) {
    for (const imageHost of imageHostsFor([site])) {
      if (!(await siteAccess(imageHost, contains))) imageHosts.push(imageHost);
    }
  }
  const stillBlocked = [];
  for (const entry of blocked) if (!(await granted(entry.origin, contains))) stillBlocked.push(entry);
  const origins = [
    ...(siteMissing ? sitePatterns(site) : []),
    ...imageHosts.flatMap(sitePatterns),
    ...stillBlocked.map((entry) => entry.origin),
  ];
  return { site, auto, siteMissing, imageHosts, blocked: stillBlocked, origins: [...new Set(origins)] };
}
