// Messaging with content scripts: one long-lived port per page (frame). Pages ask for checks in batches; the
// worker answers each image as its result arrives, and pushes configuration changes and re-check requests.
import { ext } from "../shared/browser.js";
import { MIN_IMAGE_SIDE } from "./images.js";
import { MSG, PAGE_PORT } from "../shared/message-types.js";
import { autoCheckOn } from "./sites.js";

export class PageSessions {
  /**
   * `checker` scores URLs; `settings()` returns the current settings; `onBlocked(tabId, pageUrl, imageUrl)`
   * notes an image the extension may not read; `onNewPage(tabId)` hears that a tab shows a new page;
   * `labels` (a UserLabels) adds the user's own label to results; `onFeedback({url, label, share, result})`
   * sends a "this verdict is wrong" report.
   */
  constructor({ checker, settings, onBlocked = () => {}, onNewPage = () => {}, labels = null, onFeedback = null }) {
    Object.assign(this, { checker, labels, onFeedback, settings, onBlocked, onNewPage });
    this.ports = new Set();
    // What a page may send, by type.
    this.handlers = {
      [MSG.pageToWorker.hello]: (port, message) => this.hello(port, message),
      [MSG.pageToWorker.check]: (port, message) => {
        if (!Array.isArray(message.items)) return;
        for (const item of message.items) this.checkOne(port, String(item.url), Boolean(item.manual));
      },
      [MSG.pageToWorker.flagged]: (port, message) => {
        const tabId = port.sender?.tab?.id;
        if (tabId !== undefined && port.sender?.frameId === 0) showFlagged(tabId, Number(message.count) || 0);
      },
      [MSG.pageToWorker.feedback]: (port, message) => {
        if (this.onFeedback) this.feedback(port, message);
      },
      // Needs no answer: receiving it is what keeps the worker awake while images wait.
      [MSG.pageToWorker.keepalive]: () => {},
    };
  }

  /** The configuration a page runs with. */
  configFor(port, settings) {
    const url = port.sender?.url ?? port.sender?.tab?.url ?? "";
    return {
      type: MSG.workerToPage.config,
      auto: autoCheckOn(url, settings),
      badgeStyle: settings.badgeStyle,
      blurFlagged: settings.blurFlagged,
      minImageSide: MIN_IMAGE_SIDE,
    };
  }

  /** Adopt a newly connected page. */
  connect(port) {
    if (port.name !== PAGE_PORT) return;
    this.ports.add(port);
    port.onDisconnect.addListener(() => this.ports.delete(port));
    port.onMessage.addListener((message) => this.receive(port, message));
  }

  /** A message from a page. */
  receive(port, message) {
    if (Object.hasOwn(this.handlers, message?.type)) this.handlers[message.type](port, message);
  }

  async hello(port, message) {
    // A page's first hello (not a reconnection after the worker was stopped) starts a new page in its tab.
    const tabId = port.sender?.tab?.id;
    if (message.fresh && tabId !== undefined && port.sender?.frameId === 0) this.onNewPage(tabId);
    port.postMessage(this.configFor(port, await this.settings()));
  }

  async checkOne(port, url, manual) {
    const send = (result) => {
      try {
        port.postMessage({ type: MSG.workerToPage.result, url, manual, result });
      } catch {
        // The page went away.
      }
    };
    if (manual) send({ state: "pending" });
    const result = await this.checker.check(url, { manual, onUpdate: send });
    // Settings changed while it waited: the page is asked to check again with the new server.
    if (result.code === "superseded") return;
    const tab = port.sender?.tab;
    if (result.code === "no_access" && tab?.id !== undefined) this.onBlocked(tab.id, tab.url ?? port.sender.url, url);
    send(this.labels ? await this.labels.decorate(result) : result);
  }

  /** A page's "Wrong? It's ..." click: report it, then tell the page whether it was stored. */
  async feedback(port, { url, label, share, result }) {
    let answer;
    try {
      await this.onFeedback({ url: String(url), label, share: Boolean(share), result });
      answer = { type: MSG.workerToPage.feedbackDone, url, label };
    } catch (error) {
      answer = { type: MSG.workerToPage.feedbackFailed, url, message: String(error?.message ?? error) };
    }
    this.post(port, answer);
  }

  /** Send every page its (possibly changed) configuration. */
  async broadcastConfig() {
    const settings = await this.settings();
    for (const port of this.ports) this.post(port, this.configFor(port, settings));
  }

  /** Ask every page to check its images again (`what`: "all" after a model change, "failed" otherwise). */
  broadcastRecheck(what) {
    for (const port of this.ports) this.post(port, { type: MSG.workerToPage.recheck, what });
  }

  post(port, message) {
    try {
      port.postMessage(message);
    } catch {
      this.ports.delete(port);
    }
  }
}

/**
 * The number of images flagged as AI on a tab's page, on the toolbar button. The browser keeps it for the tab,
 * not the worker, so it outlives a stopped worker.
 */
function showFlagged(tabId, count) {
  // null, not "": a tab without flags shows the button's global state (the server-down mark).
  ext.action.setBadgeText({ tabId, text: count > 0 ? String(count) : null }).catch(() => {});
  if (count > 0) ext.action.setBadgeBackgroundColor({ tabId, color: "#b3261e" }).catch(() => {});
}

/** The server stopped answering (`down`) or answers again: one grey "off" mark on the toolbar button. */
export function showServerState(down) {
  ext.action.setBadgeText({ text: down ? "off" : "" }).catch(() => {});
  ext.action.setBadgeBackgroundColor({ color: "#50555a" }).catch(() => {});
  const title = down ? "RealCheck: the server is not answering (start it with: realcheck serve)" : "RealCheck";
  ext.action.setTitle({ title }).catch(() => {});
}
