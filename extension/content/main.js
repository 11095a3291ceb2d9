// RealCheck content script: finds images (finder.js), asks the service worker about them over one port,
// and draws the answers as overlay badges (overlay.js). It never touches the network itself: the worker
// downloads image bytes and talks to the server.
(() => {
  const RC = (globalThis.__realcheck ??= {});
  if (RC.started) return;
  RC.started = true;

  const ext = globalThis.browser ?? globalThis.chrome;
  const PORT_NAME = "realcheck-page";
  const FINAL = new Set(["done", "failed", "skipped"]);
  const KEEPALIVE_MS = 20_000;
  const NARROW = 170; // badges on images narrower than this use the compact style

  let config = { auto: false, badgeStyle: "full", blurFlagged: false };
  let port = null;
  let lastContextTarget = null;
  let flaggedSent = -1;
  const overlay = new RC.Overlay();
  const targets = new Map(); // element -> target {el, kind, url, manual, badge, veil, revealed, expanded}
  const urls = new Map(); // url -> {auto, manual: result or null, sent: {auto, manual}}
  const toasts = new Map(); // url -> badge, for verdicts whose image could not be found
  const visible = new Set();
  const outbox = new Map();

  const visibleObserver = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const target = targets.get(entry.target);
      if (!target) continue;
      if (entry.isIntersecting) visible.add(target);
      else visible.delete(target);
    }
    scheduleLayout();
  });
  const sizeObserver = new ResizeObserver(() => scheduleLayout());

  const finder = new RC.Finder({
    onCandidate: (element, kind, url) => {
      if (config.auto) showTarget(element, kind, url, false);
    },
    onRejected: (element) => {
      const target = targets.get(element);
      if (target && !target.manual) dropTarget(target);
    },
    onChange: () => scheduleLayout(),
  });

  // ---- talking to the worker -------------------------------------------------------------------------

  function connect(fresh = false) {
    try {
      port = ext.runtime.connect({ name: PORT_NAME });
    } catch {
      teardown(); // the extension was removed or updated: this copy of the script is an orphan
      return;
    }
    port.onMessage.addListener(onPortMessage);
    port.onDisconnect.addListener(() => {
      port = null;
      if (!ext.runtime?.id) {
        teardown();
        return;
      }
      // The worker was stopped (idle) or restarted: reconnect and ask again for what is still open.
      setTimeout(() => {
        connect();
        for (const [url, entry] of urls) {
          for (const mode of ["auto", "manual"]) {
            if (entry.sent[mode] && !FINAL.has(entry[mode]?.state)) outbox.set(url, outbox.get(url) || mode === "manual");
          }
        }
        flush();
      }, 500);
    });
    // `fresh`: this is a new page (the worker forgets what the tab's previous page could not read).
    post({ type: "hello", fresh });
  }

  function post(message) {
    try {
      port?.postMessage(message);
    } catch {
      port = null;
    }
  }

  function flush() {
    if (RC.flushTimer || !outbox.size) return;
    RC.flushTimer = setTimeout(() => {
      RC.flushTimer = null;
      if (!port) return;
      const items = [...outbox].map(([url, manual]) => ({ url, manual }));
      outbox.clear();
      post({ type: "check", items });
    }, 15);
  }

  function request(url, manual, again = false) {
    const entry = urls.get(url) ?? { auto: null, manual: null, sent: { auto: false, manual: false } };
    urls.set(url, entry);
    if (!again && (entry.auto?.state === "done" || entry.manual?.state === "done")) return;
    const mode = manual ? "manual" : "auto";
    if (entry.sent[mode]) return;
    entry.sent[mode] = true;
    outbox.set(url, outbox.get(url) || manual);
    flush();
  }

  function onPortMessage(message) {
    if (message?.type === "config") applyConfig(message);
    else if (message?.type === "result") onResult(message.url, message.manual, message.result);
    else if (message?.type === "recheck") recheck(message.what);
    else if (message?.type === "feedback-done" || message?.type === "feedback-failed") onFeedbackAnswer(message);
  }

  // ---- "Wrong? It's real" / "Wrong? It's AI" ------------------------------------------------------------

  function sendFeedback(target, label, share) {
    const result = resultFor(urls.get(target.url), target.manual);
    if (result?.state !== "done") return;
    overlay.feedbackStatus(target.badge, share ? "Sending your report and the image…" : "Sending your report…");
    const { sha256, model, score, verdict } = result;
    post({ type: "feedback", url: target.url, label, share, result: { state: "done", sha256, model, score, verdict } });
  }

  function onFeedbackAnswer(message) {
    const entry = urls.get(message.url);
    if (!entry) return;
    if (message.type === "feedback-done") {
      // The user's label now stands for this image (the worker keeps it for later visits too).
      for (const mode of ["auto", "manual"]) {
        if (entry[mode]?.state === "done") entry[mode] = { ...entry[mode], userLabel: message.label };
      }
    }
    for (const target of targets.values()) {
      if (target.url !== message.url || !target.badge) continue;
      render(target);
      overlay.feedbackStatus(
        target.badge,
        message.type === "feedback-done" ? "Thank you: your report was sent." : `Not sent: ${message.message}`,
      );
    }
    reportFlagged();
  }

  /** The verdict a badge stands for: the user's own report over the model's. */
  function shownVerdict(result) {
    return result?.userLabel ?? result?.verdict;
  }

  function onResult(url, manual, result) {
    const entry = urls.get(url);
    if (!entry || !result) return;
    const mode = manual ? "manual" : "auto";
    // A verdict stands until replaced by another verdict (a model change re-checks without blanking).
    if (entry[mode]?.state === "done" && result.state !== "done") return;
    entry[mode] = result;
    for (const target of targets.values()) if (target.url === url) render(target);
    const toast = toasts.get(url);
    if (toast) overlay.render(toast, resultFor(entry, true), { expanded: true, subject: "the image" });
    if (manual && FINAL.has(result.state)) {
      const spoken = RC.describe(result, "the image").spoken;
      overlay.announce(spoken);
    }
    reportFlagged();
  }

  function recheck(what) {
    // "all": the model changed, ask again but keep showing the old verdict until the new one arrives;
    // "failed": the server, key or permissions changed, ask again for everything without a verdict.
    for (const entry of urls.values()) {
      for (const mode of ["auto", "manual"]) {
        const state = entry[mode]?.state;
        if (what === "all") entry.sent[mode] = false;
        else if (state !== "done" && state !== "skipped") {
          entry[mode] = null;
          entry.sent[mode] = false;
        }
      }
    }
    for (const target of targets.values()) {
      if (!target.el.isConnected || !target.url) continue;
      request(target.url, target.manual, what === "all");
      render(target);
    }
  }

  function reportFlagged() {
    let count = 0;
    for (const target of targets.values()) {
      const result = resultFor(urls.get(target.url), target.manual);
      if (result?.state === "done" && shownVerdict(result) === "ai") count += 1;
    }
    if (count !== flaggedSent) {
      flaggedSent = count;
      post({ type: "flagged", count });
    }
  }

  function applyConfig(next) {
    const wasAuto = config.auto;
    config = { ...config, auto: Boolean(next.auto), badgeStyle: next.badgeStyle, blurFlagged: next.blurFlagged };
    if (config.auto && !wasAuto) finder.start();
    if (!config.auto && wasAuto) {
      finder.stop();
      for (const target of [...targets.values()]) if (!target.manual) dropTarget(target);
    }
    for (const target of targets.values()) render(target);
    reportFlagged();
  }

  // ---- targets and badges ----------------------------------------------------------------------------

  function resultFor(entry, manual) {
    if (!entry) return null;
    if (entry.auto?.state === "done") return entry.auto;
    if (entry.manual?.state === "done") return entry.manual;
    return manual ? entry.manual : entry.auto;
  }

  function subjectOf(target) {
    const alt = target.el.getAttribute?.("alt")?.trim();
    if (alt) return `the image "${alt.slice(0, 80)}"`;
    return target.kind === "background" ? "this background image" : "this image";
  }

  function showTarget(element, kind, url, manual) {
    let target = targets.get(element);
    if (!target) {
      target = { el: element, kind, url: "", manual: false, badge: null, veil: null, revealed: false, expanded: false };
      targets.set(element, target);
      visibleObserver.observe(element);
      sizeObserver.observe(element);
    }
    if (manual) {
      target.manual = true;
      target.expanded = true;
    }
    if (target.url !== url) {
      target.url = url;
      target.revealed = false;
    }
    request(url, target.manual);
    render(target);
    return target;
  }

  function dropTarget(target) {
    target.badge?.remove();
    target.veil?.remove();
    targets.delete(target.el);
    visible.delete(target);
    visibleObserver.unobserve(target.el);
    sizeObserver.unobserve(target.el);
    reportFlagged();
  }

  function render(target) {
    const result = resultFor(urls.get(target.url), target.manual);
    const state = result?.state ?? "pending";
    const hide = !target.manual && (!config.auto || state === "skipped");
    if (hide) {
      target.badge?.remove();
      target.badge = null;
      target.veil?.remove();
      target.veil = null;
      return;
    }
    if (!target.badge) {
      target.badge = overlay.createBadge(
        () => {
          target.expanded = !target.expanded;
          render(target);
        },
        (label, share) => sendFeedback(target, label, share),
      );
    }
    const narrow = target.el.getBoundingClientRect().width < NARROW;
    // Automatic badges stay small while they wait; a check the user asked for says what is happening.
    const compact = config.badgeStyle === "compact" || narrow || (!target.manual && state === "pending");
    overlay.render(target.badge, result ?? { state: "pending" }, {
      compact: compact && !target.expanded,
      expanded: target.expanded,
      subject: subjectOf(target),
    });
    const blur = config.blurFlagged && state === "done" && shownVerdict(result) === "ai" && !target.revealed;
    if (blur && !target.veil) {
      target.veil = overlay.createVeil(() => {
        target.revealed = true;
        render(target);
      });
    } else if (!blur && target.veil) {
      target.veil.remove();
      target.veil = null;
    }
    scheduleLayout();
  }

  // ---- positions -------------------------------------------------------------------------------------

  let layoutQueued = false;

  function scheduleLayout() {
    if (layoutQueued) return;
    layoutQueued = true;
    requestAnimationFrame(() => {
      layoutQueued = false;
      layout();
    });
  }

  const fixedLayer = new WeakMap();

  function isFixedLayer(element) {
    if (!fixedLayer.has(element)) {
      const position = getComputedStyle(element).position;
      fixedLayer.set(element, position === "fixed" || position === "sticky");
    }
    return fixedLayer.get(element);
  }

  /** The fixed or sticky layer (a site header, a banner) over the point (x, y) of `element`, or null. */
  function coveringLayer(element, x, y) {
    const hit = document.elementsFromPoint(x, y).find((node) => node !== overlay.host);
    if (!hit || hit === element || element.contains(hit) || hit.contains(element)) return null;
    for (let node = hit; node && node !== document.body; node = node.parentElement) {
      if (node.contains(element)) return null;
      if (isFixedLayer(node)) return node;
    }
    return null;
  }

  function layout() {
    overlay.attach();
    const width = document.documentElement.clientWidth;
    const height = document.documentElement.clientHeight;
    const measured = [];
    for (const target of [...targets.values()]) {
      if (!target.el.isConnected) {
        dropTarget(target);
        continue;
      }
      if (!target.badge) continue;
      if (!visible.has(target)) {
        measured.push([target, null]);
        continue;
      }
      const rect = target.el.getBoundingClientRect();
      const shown =
        rect.width >= 1 &&
        rect.height >= 1 &&
        (target.el.checkVisibility?.({ visibilityProperty: true, opacityProperty: true }) ?? true);
      measured.push([target, shown ? rect : null]);
    }
    const placed = [];
    for (const [target, rect] of measured) {
      let show = Boolean(rect);
      let x = 0;
      let y = 0;
      let clipTop = 0;
      if (rect) {
        // The badge sits in the top-left corner of the part of the image that is on screen.
        x = Math.max(rect.left, 0) + 6;
        y = Math.max(rect.top, 0) + 6;
        // Under a sticky header the badge moves down to the part of the image below it.
        const layer = x < width && y < height ? coveringLayer(target.el, x + 2, y + 2) : null;
        if (layer) {
          clipTop = layer.getBoundingClientRect().bottom;
          y = clipTop + 6;
        }
        show = x < rect.right - 16 && y < rect.bottom - 16 && x < width && y < height;
        if (show && layer) show = !coveringLayer(target.el, x + 2, y + 2);
      }
      placed.push([target, rect, show, x, y, clipTop]);
    }
    // All reads above, all writes below: one layout per frame, however many badges.
    for (const [target, rect, show, x, y, clipTop] of placed) {
      target.badge.hidden = !show;
      if (show) target.badge.style.transform = `translate(${Math.round(x)}px, ${Math.round(y)}px)`;
      if (target.veil) {
        target.veil.hidden = !rect;
        if (rect) {
          const left = Math.max(rect.left, 0);
          const top = Math.max(rect.top, clipTop, 0);
          target.veil.style.transform = `translate(${Math.round(left)}px, ${Math.round(top)}px)`;
          target.veil.style.width = `${Math.max(0, Math.min(rect.right, width) - left)}px`;
          target.veil.style.height = `${Math.max(0, Math.min(rect.bottom, height) - top)}px`;
        }
      }
    }
  }

  // ---- right-click checks ----------------------------------------------------------------------------

  function imageUrlOf(element) {
    if (element instanceof HTMLImageElement) return [element.currentSrc, element.src];
    const background = RC.backgroundUrl(getComputedStyle(element).backgroundImage);
    return background ? [background] : [];
  }

  function findElement(url) {
    for (let node = lastContextTarget; node && node.nodeType === Node.ELEMENT_NODE; node = node.parentElement) {
      if (imageUrlOf(node).includes(url)) return node;
    }
    const images = [...document.images].filter((image) => image.currentSrc === url || image.src === url);
    const onScreen = images.find((image) => {
      const rect = image.getBoundingClientRect();
      return rect.width > 0 && rect.bottom > 0 && rect.top < innerHeight;
    });
    return onScreen ?? images[0] ?? null;
  }

  function manualCheck(url) {
    const element = findElement(url);
    if (element) {
      showTarget(element, element instanceof HTMLImageElement ? "img" : "background", url, true);
      overlay.announce(`RealCheck is checking ${subjectOf(targets.get(element))}.`);
      return;
    }
    // The image is gone or not in this document's DOM (a canvas copy, a closed shadow root): answer anyway.
    let toast = toasts.get(url);
    if (!toast) {
      toast = overlay.createToast();
      toasts.set(url, toast);
    }
    toast.hidden = false;
    request(url, true);
    overlay.render(toast, resultFor(urls.get(url), true) ?? { state: "pending" }, { expanded: true, subject: "the image" });
  }

  function onRuntimeMessage(message, sender, sendResponse) {
    if (message?.type === "ping") {
      sendResponse({ ok: true });
    } else if (message?.type === "manual-check" && typeof message.url === "string") {
      manualCheck(message.url);
      sendResponse({ ok: true });
    }
    return false;
  }

  // ---- lifecycle -------------------------------------------------------------------------------------

  const onContextMenu = (event) => {
    lastContextTarget = event.composedPath?.()[0] ?? event.target;
  };
  const keepalive = setInterval(() => {
    const waiting = [...urls.values()].some((entry) =>
      ["auto", "manual"].some((mode) => entry.sent[mode] && !FINAL.has(entry[mode]?.state)),
    );
    // A message resets the worker's idle timer, so retries keep going while images wait for the server.
    if (waiting) post({ type: "keepalive" });
  }, KEEPALIVE_MS);
  const slowLayout = setInterval(() => {
    // Catches movement no event reports (CSS transitions, transform-based scrolling).
    if (visible.size) layout();
  }, 500);

  function teardown() {
    finder.stop();
    visibleObserver.disconnect();
    sizeObserver.disconnect();
    clearInterval(keepalive);
    clearInterval(slowLayout);
    removeEventListener("scroll", scheduleLayout, true);
    removeEventListener("resize", scheduleLayout);
    document.removeEventListener("contextmenu", onContextMenu, true);
    try {
      ext.runtime.onMessage.removeListener(onRuntimeMessage);
    } catch {
      // The extension context is gone already.
    }
    overlay.remove();
    targets.clear();
    RC.started = false;
  }

  addEventListener("scroll", scheduleLayout, { capture: true, passive: true });
  addEventListener("resize", scheduleLayout, { passive: true });
  document.addEventListener("contextmenu", onContextMenu, true);
  ext.runtime.onMessage.addListener(onRuntimeMessage);
  connect(true);
})();
