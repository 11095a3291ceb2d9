// Which sites the extension may read: the host of a page, and the access the user granted to a site's
// patterns (http and https apart). The worker and the extension pages ask the same questions.
import { ext } from "./browser.js";
import { sitePatterns } from "./settings.js";

/** The host of a page URL, or "" for pages that are not http(s) (the browser's own pages, files, ...). */
export function pageHost(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.hostname : "";
  } catch {
    return "";
  }
}

const hasPermission = (permissions) => ext.permissions.contains(permissions);

/**
 * The match patterns of `site` the extension has access to, scheme by scheme (http only is common locally);
 * `contains` is permissions.contains (replaceable for tests).
 */
export async function grantedPatterns(site, contains = hasPermission) {
  const granted = [];
  for (const pattern of sitePatterns(site)) {
    for (const scheme of ["http", "https"]) {
      const specific = pattern.replace(/^\*:/, `${scheme}:`);
      try {
        if (await contains({ origins: [specific] })) granted.push(specific);
      } catch {
        // An invalid pattern grants nothing.
      }
    }
  }
  return granted;
}

/** True when the extension may read pages and images of `site` (over http or https). */
export async function siteAccess(site, contains = hasPermission) {
  return (await grantedPatterns(site, contains)).length > 0;
}
