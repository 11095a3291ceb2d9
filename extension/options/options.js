// The options page: server, API key, sites, automatic mode, badge style, blur, and a connection test.
import { ext } from "../shared/browser.js";
import { MSG } from "../shared/message-types.js";
import {
  accessOrigins,
  DEFAULTS,
  getSettings,
  normaliseServerUrl,
  originPattern,
  parseSites,
  saveSettings,
} from "../shared/settings.js";
import { siteAccess } from "../shared/site-access.js";

const $ = (id) => document.getElementById(id);
const form = $("options");
const LOOPBACK = /^http:\/\/(127\.0\.0\.1|localhost)(:\d+)?(\/|$)/;

function fill(settings) {
  $("serverUrl").value = settings.serverUrl;
  $("apiKey").value = settings.apiKey;
  $("autoMode").checked = settings.autoMode;
  $("sites").value = settings.sites.join("\n");
  for (const radio of form.elements.badgeStyle) radio.checked = radio.value === settings.badgeStyle;
  $("blurFlagged").checked = settings.blurFlagged;
}

function read() {
  return {
    serverUrl: $("serverUrl").value,
    apiKey: $("apiKey").value,
    autoMode: $("autoMode").checked,
    sites: parseSites($("sites").value),
    badgeStyle: form.elements.badgeStyle.value || DEFAULTS.badgeStyle,
    blurFlagged: $("blurFlagged").checked,
  };
}

function status(element, text, ok) {
  element.textContent = text;
  element.dataset.ok = String(ok);
}

async function showAccess(sites) {
  const missing = [];
  for (const site of sites) {
    if (!(await siteAccess(site))) missing.push(site);
  }
  $("access-row").hidden = missing.length === 0;
  $("access-note").textContent = missing.length
    ? `RealCheck may not read ${missing.length} of these sites yet (${missing.slice(0, 3).join(", ")}${missing.length > 3 ? ", …" : ""}).`
    : "";
  return missing;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const values = read();
  let serverUrl;
  try {
    serverUrl = normaliseServerUrl(values.serverUrl);
  } catch (error) {
    status($("save-status"), error.message, false);
    return;
  }
  // A server other than this computer needs the user's permission (asked now, during the click), unless it
  // sends CORS headers for the extension (`realcheck serve --allow-extension-origins`).
  if (!LOOPBACK.test(serverUrl)) {
    await ext.permissions.request({ origins: [originPattern(serverUrl)] }).catch(() => false);
  }
  const saved = await saveSettings({ ...values, serverUrl });
  fill(saved);
  await showAccess(saved.sites);
  status($("save-status"), "Saved.", true);
});

$("test-connection").addEventListener("click", async () => {
  const output = $("connection-status");
  let serverUrl;
  try {
    serverUrl = normaliseServerUrl($("serverUrl").value);
  } catch (error) {
    status(output, error.message, false);
    return;
  }
  status(output, "Connecting…", true);
  const answer = await ext.runtime.sendMessage({ type: MSG.extensionPageToWorker.testConnection, serverUrl, apiKey: $("apiKey").value.trim() });
  if (answer?.ok) {
    const runtime = answer.model.runtime ?? {};
    const where = runtime.runtime ? `, ${runtime.runtime} on ${runtime.device ?? "?"}` : "";
    const readiness = answer.ready ? "ready" : `not ready yet (${answer.model.state ?? "loading"})`;
    status(output, `Connected: model ${answer.model.name} version ${answer.model.version} (${readiness}${where}).`, true);
    output.dataset.version = answer.model.version;
  } else {
    status(output, `Cannot connect: ${answer?.message ?? "no answer"}`, false);
    delete output.dataset.version;
  }
});

$("defaults").addEventListener("click", () => {
  fill({ ...DEFAULTS, sites: [...DEFAULTS.sites] });
  status($("save-status"), "Defaults restored; press Save to keep them.", true);
});

$("allow-sites").addEventListener("click", async () => {
  const sites = parseSites($("sites").value);
  // The sites and the hosts their pictures come from, in one request.
  await ext.permissions.request({ origins: accessOrigins(sites) }).catch(() => false);
  await showAccess(sites);
});

getSettings().then(async (settings) => {
  fill(settings);
  await showAccess(settings.sites);
  document.body.dataset.ready = "true";
});
