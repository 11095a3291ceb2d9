// Settings: server URL and site normalisation, site matching, permission patterns.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  accessOrigins,
  DEFAULT_IMAGE_HOSTS,
  DEFAULT_SITES,
  DEFAULTS,
  imageHostsFor,
  normaliseServerUrl,
  normaliseSite,
  originPattern,
  parseSites,
  siteForHost,
  sitePatterns,
} from "../../extension/shared/settings.js";

test("defaults: the local server, automatic mode on for news sites", () => {
  assert.equal(DEFAULTS.serverUrl, "http://127.0.0.1:8000");
  assert.equal(DEFAULTS.autoMode, true);
  assert.ok(DEFAULTS.sites.includes("nytimes.com") && DEFAULTS.sites.includes("bbc.co.uk"));
});

test("server URLs are checked and lose their trailing slash", () => {
  assert.equal(normaliseServerUrl(" http://127.0.0.1:8000/ "), "http://127.0.0.1:8000");
  assert.equal(normaliseServerUrl("https://rc.example.org/api/"), "https://rc.example.org/api");
  assert.equal(normaliseServerUrl(""), "http://127.0.0.1:8000");
  assert.throws(() => normaliseServerUrl("ftp://x"), /http/);
  assert.throws(() => normaliseServerUrl("not a url"), /not a URL/);
});

test("sites are host names, whatever the user typed", () => {
  assert.equal(normaliseSite("https://www.BBC.co.uk/news/world"), "bbc.co.uk");
  assert.equal(normaliseSite("localhost:8080"), "localhost");
  assert.deepEqual(parseSites("nytimes.com\n  https://www.nytimes.com/x, reuters.com  \n\n"), ["nytimes.com", "reuters.com"]);
});

test("a site covers its subdomains and nothing else", () => {
  const sites = ["nytimes.com", "bbc.co.uk"];
  assert.equal(siteForHost("www.nytimes.com", sites), "nytimes.com");
  assert.equal(siteForHost("nytimes.com", sites), "nytimes.com");
  assert.equal(siteForHost("notnytimes.com", sites), null);
  assert.equal(siteForHost("bbc.co.uk.evil.example", sites), null);
});

test("permission patterns: the site and its subdomains; addresses alone", () => {
  assert.deepEqual(sitePatterns("nytimes.com"), ["*://nytimes.com/*", "*://*.nytimes.com/*"]);
  assert.deepEqual(sitePatterns("127.0.0.1"), ["*://127.0.0.1/*"]);
  assert.deepEqual(sitePatterns("localhost"), ["*://localhost/*"]);
  assert.equal(originPattern("https://cdn.example.com:8443/a/b.jpg?x=1"), "https://cdn.example.com/*");
});

test("the news sites' image hosts: other domains than the sites', and asked for with them in one list", () => {
  for (const [site, hosts] of Object.entries(DEFAULT_IMAGE_HOSTS)) {
    assert.ok(DEFAULT_SITES.includes(site), site);
    // A subdomain of the site itself is covered by the site's own access: listing it would only add noise.
    for (const host of hosts) assert.equal(siteForHost(host, [site]), null, `${host} is part of ${site}`);
  }
  assert.deepEqual(imageHostsFor(["bbc.com", "bbc.co.uk", "reuters.com"]), ["ichef.bbci.co.uk"]);
  const origins = accessOrigins(DEFAULT_SITES);
  assert.equal(new Set(origins).size, origins.length, "no duplicates");
  for (const site of DEFAULT_SITES) for (const pattern of sitePatterns(site)) assert.ok(origins.includes(pattern), pattern);
  for (const host of ["static01.nyt.com", "ichef.bbci.co.uk", "i.guim.co.uk", "images.wsj.net"]) {
    assert.ok(origins.includes(`*://${host}/*`), host);
  }
  assert.deepEqual(accessOrigins(["news.example"]), ["*://news.example/*", "*://*.news.example/*"]);
});
