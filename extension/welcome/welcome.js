// The first-run page (opened on install): says what is sent where, then asks once, in a single permission
// request, for the listed news sites and the hosts their images come from, or for all sites.
import { ext } from "../shared/browser.js";
import { MSG } from "../shared/message-types.js";
import { accessOrigins, getSettings, imageHostsFor } from "../shared/settings.js";
import { siteAccess } from "../shared/site-access.js";

const $ = (id) => document.getElementById(id);
const ALL_SITES = ["*://*/*"];
const LOOPBACK = /^http:\/\/(127\.0\.0\.1|localhost)(:\d+)?(\/|$)/;
let sites = [];
let newsOrigins = [];

function status(text, ok) {
  $("grant-status").textContent = text;
  $("grant-status").dataset.ok = String(ok);
}

function list(element, names) {
  element.replaceChildren(
    ...names.map((name) => {
      const item = document.createElement("li");
      item.textContent = name;
      return item;
    }),
  );
}

async function sitesWithAccess() {
  let count = 0;
  for (const site of sites) if (await siteAccess(site)) count += 1;
  return count;
}

async function grant(origins) {
  // The request comes first in the click handler: the browser only asks while the click counts as a gesture.
  let granted;
  try {
    granted = await ext.permissions.request({ origins });
  } catch (error) {
    status(`The browser refused to ask: ${error.message}`, false);
    return;
  }
  if (!granted) {
    status("Nothing was allowed. Allow a site later from the toolbar button, or the whole list from the options.", false);
    return;
  }
  // Registers the content script for the sites and starts it in tabs already open on them.
  const applied = await ext.runtime.sendMessage({ type: MSG.extensionPageToWorker.applyAccess });
  const allowed = await sitesWithAccess();
  const tabs = applied?.started ? ` ${applied.started} open tab${applied.started === 1 ? "" : "s"} now check their images too.` : "";
  status(`Done: automatic badges are on for ${allowed} of the ${sites.length} listed sites.${tabs}`, true);
  document.body.dataset.granted = "true";
}

/** Ask the server now: is it there, which model, and how good that model was measured to be. */
async function checkServer() {
  const settings = await getSettings();
  $("server-status").textContent = `Asking ${settings.serverUrl}…`;
  const answer = await ext.runtime.sendMessage({
    type: MSG.extensionPageToWorker.testConnection,
    serverUrl: settings.serverUrl,
    apiKey: settings.apiKey,
  });
  const status = $("server-status");
  if (answer?.ok) {
    const model = answer.model ?? {};
    status.textContent =
      `The server at ${settings.serverUrl} answers: model ${model.name ?? "?"} version ${model.version ?? "?"}` +
      (answer.ready ? ", ready." : ", still loading.");
    $("accuracy").textContent = model.accuracy_statement ?? "";
  } else {
    status.textContent =
      `No RealCheck server answers at ${settings.serverUrl} (${answer?.message ?? "no answer"}). Start one with ` +
      `"realcheck serve" on this computer, or set its address in the options, then press Check again.`;
    $("accuracy").textContent = "";
  }
  status.dataset.ok = String(Boolean(answer?.ok));
}

$("check-server").addEventListener("click", checkServer);
$("grant-news").addEventListener("click", () => grant(newsOrigins));
$("grant-all").addEventListener("click", () => grant(ALL_SITES));
$("not-now").addEventListener("click", async () => {
  const tab = await ext.tabs.getCurrent().catch(() => null);
  if (tab?.id !== undefined) await ext.tabs.remove(tab.id);
  else window.close();
});

getSettings().then(async (settings) => {
  sites = settings.sites;
  const imageHosts = imageHostsFor(sites);
  newsOrigins = accessOrigins(sites);
  $("server-url").textContent = settings.serverUrl;
  if (!LOOPBACK.test(settings.serverUrl)) $("server-where").textContent = "(not on this computer)";
  $("grant-news").textContent = `Allow the ${sites.length} news sites and their ${imageHosts.length} image hosts`;
  $("list-summary").textContent = `The ${sites.length} sites and ${imageHosts.length} image hosts`;
  list($("site-list"), sites);
  list($("image-host-list"), imageHosts);
  $("grant-news").disabled = $("grant-all").disabled = false;
  const allowed = await sitesWithAccess();
  if (sites.length && allowed === sites.length) status("RealCheck may already read every listed site.", true);
  await checkServer();
  document.body.dataset.ready = "true";
});
