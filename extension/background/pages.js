// Messaging with content scripts: one long-lived port per page (frame). Pages ask for checks in batches; the
// worker answers each image as its result arrives, and pushes configuration changes and re-check requests.
import { ext } from "./browser.js";
import { autoCheckOn } from "./sites.js";

export const PAGE_PORT = "realcheck-page";

export class PageSessions {
  /**
   * `checker` scores URLs; `settings()` returns the current settings; `onBlocked(tabId, pageUrl, imageUrl)`
   * notes an image the extension may not read; `onNewPage(tabId)` hears that a tab shows a new page;
   * `labels` (a UserLabels) adds the user's own label to results; `onFeedback({url, label, share, result})`
   * sends a "this verdict is wrong" report.
   */
  constructor({ checker, settings, onBlocked = () => {}, onNewPage = () => {}, labels = null, onFeedback = null }) {
    this.checker = checker;
    this.labels = labels;
    this.onFeedback = onFeedback;
    this.settings = settings;
    this.onBlocked = onBlocked;
    this.onNewPage = onNewPage;
    this.ports = new Set();
    this.flagged = new Map(); // tabId -> number of images flagged as AI on its page
  }

  /** The configuration a page runs with. */
  configFor(port, settings) {
    const url = port.sender?.url ?? port.sender?.tab?.url ?? "";
    return {
      type: "config",
      auto: autoCheckOn(url, settings),
      badgeStyle: settings.badgeStyle,
      blurFlagged: settings.blurFlagged,
    };
  }

  /** Adopt a newly connected page. */
  connect(port) {
    if (port.name !== PAGE_PORT) return;
    this.ports.add(port);
    port.onDisconnect.addListener(() => this.ports.delete(port));
    port.onMessage.addListener((message) => this.receive(port, message));
  }

  async receive(port, message) {
    if (message?.type === "hello") {
      // A page's first hello (not a reconnection after the worker was stopped) starts a new page in its tab.
      const tabId = port.sender?.tab?.id;
      if (message.fresh && tabId !== undefined && port.sender?.frameId === 0) this.onNewPage(tabId);
      port.postMessage(this.configFor(port, await this.settings()));
    } else if (message?.type === "check" && Array.isArray(message.items)) {
      for (const item of message.items) this.checkOne(port, String(item.url), Boolean(item.manual));
    } else if (message?.type === "flagged") {
      const tabId = port.sender?.tab?.id;
      if (tabId !== undefined && port.sender?.frameId === 0) this.setFlagged(tabId, Number(message.count) || 0);
    } else if (message?.type === "feedback" && this.onFeedback) {
      this.feedback(port, message);
    }
    // "keepalive" needs no answer: receiving it is what keeps the worker awake while images wait.
  }

  async checkOne(port, url, manual) {
    const send = (result) => {
      try {
        port.postMessage({ type: "result", url, manual, result });
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
      answer = { type: "feedback-done", url, label };
    } catch (error) {
      answer = { type: "feedback-failed", url, message: String(error?.message ?? error) };
    }
    this.post(port, answer);
  }

  setFlagged(tabId, count) {
    this.flagged.set(tabId, count);
    ext.action.setBadgeText({ tabId, text: count > 0 ? String(count) : "" }).catch(() => {});
    ext.action.setBadgeBackgroundColor({ tabId, color: "#b3261e" }).catch(() => {});
  }

  /** Send every page its (possibly changed) configuration. */
  async broadcastConfig() {
    const settings = await this.settings();
    for (const port of this.ports) this.post(port, this.configFor(port, settings));
  }

  /** Ask every page to check its images again (`what`: "all" after a model change, "failed" otherwise). */
  broadcastRecheck(what) {
    for (const port of this.ports) this.post(port, { type: "recheck", what });
  }

  post(port, message) {
    try {
      port.postMessage(message);
    } catch {
      this.ports.delete(port);
    }
  }
}
