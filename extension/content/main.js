// RealCheck content script: puts the page's parts together. The finder (finder.js) finds images, results.js
// asks the worker about them over the connection (connection.js), badges.js and layout.js draw the answers
// over the page (overlay.js), manual.js answers right-click checks. It never touches the network itself:
// the worker downloads image bytes and talks to the server.
(() => {
  const RC = (globalThis.__realcheck ??= {});
  if (RC.started) return;
  RC.started = true;

  const ext = globalThis.browser ?? globalThis.chrome;
  const MSG = RC.MSG;

  let config = { auto: false, badgeStyle: "full", blurFlagged: false, minImageSide: 0 };
  let flaggedSent = -1;

  const overlay = new RC.Overlay();
  const connection = new RC.WorkerConnection({
    handlers: {
      [MSG.workerToPage.config]: applyConfig,
      [MSG.workerToPage.result]: (message) => onResult(message.url, message.manual, message.result),
      [MSG.workerToPage.recheck]: (message) => recheck(message.what),
      [MSG.workerToPage.feedbackDone]: onFeedbackAnswer,
      [MSG.workerToPage.feedbackFailed]: onFeedbackAnswer,
    },
    onReconnected: () => {
      results.resend();
      flaggedSent = -1; // a count that changed while the port was down was never delivered
      reportFlagged();
    },
    isWaiting: () => results.waiting,
    onOrphaned: () => teardown(),
  });
  const results = new RC.Results((items) => {
    if (!connection.connected) return false;
    connection.post({ type: MSG.pageToWorker.check, items });
    return true;
  });
  const badges = new RC.Badges({
    overlay,
    results,
    config: () => config,
    onFeedback: sendFeedback,
    onMoved: () => layout.schedule(),
    onDropped: () => reportFlagged(),
  });
  const layout = new RC.Layout({ overlay, badges });
  const manual = new RC.ManualChecks({ overlay, badges, results });
  const finder = new RC.Finder({
    onCandidate: (element, kind, url) => {
      if (config.auto) badges.show(element, kind, url, false);
    },
    onRejected: (element) => {
      const target = badges.get(element);
      if (target && !target.manual) badges.drop(target);
    },
    onChange: () => layout.schedule(),
  });

  function applyConfig(next) {
    const wasAuto = config.auto;
    config = {
      auto: Boolean(next.auto),
      badgeStyle: next.badgeStyle,
      blurFlagged: next.blurFlagged,
      minImageSide: next.minImageSide,
    };
    if (config.auto && !wasAuto) finder.start(config.minImageSide);
    if (!config.auto && wasAuto) {
      finder.stop();
      badges.dropAutomatic();
    }
    badges.renderAll();
    reportFlagged();
  }

  const SERVER_DOWN =
    "RealCheck cannot reach its server, so images on this page are not being checked. Start it with " +
    "\"realcheck serve\" on this computer (or fix the server address in RealCheck's options); RealCheck retries on its own.";

  function onResult(url, isManual, result) {
    if (result?.state === "unavailable") overlay.notice(SERVER_DOWN);
    else if (result?.state === "done") overlay.notice(null);
    if (!results.receive(url, isManual, result)) return;
    badges.renderAll(url);
    manual.answered(url, isManual, result);
    reportFlagged();
  }

  function recheck(what) {
    results.reset(what);
    badges.recheck(what === "all");
  }

  /** Tell the worker how many images this page flags (for the toolbar button's count), when it changed. */
  function reportFlagged() {
    const count = badges.flaggedCount();
    if (count === flaggedSent) return;
    flaggedSent = count;
    connection.post({ type: MSG.pageToWorker.flagged, count });
  }

  // ---- "Wrong? It's real" / "Wrong? It's AI" ------------------------------------------------------------

  function sendFeedback(target, label, share) {
    const result = results.resultFor(target.url, target.manual);
    if (result?.state !== "done") return;
    overlay.feedbackStatus(target.badge, share ? "Sending your report and the image…" : "Sending your report…");
    const { sha256, model, score, verdict } = result;
    connection.post({
      type: MSG.pageToWorker.feedback,
      url: target.url,
      label,
      share,
      result: { state: "done", sha256, model, score, verdict },
    });
  }

  function onFeedbackAnswer(message) {
    if (!results.has(message.url)) return;
    const sent = message.type === MSG.workerToPage.feedbackDone;
    // The user's label now stands for this image (the worker keeps it for later visits too).
    if (sent) results.label(message.url, message.label);
    for (const target of badges.all()) {
      if (target.url !== message.url || !target.badge) continue;
      badges.render(target);
      overlay.feedbackStatus(target.badge, sent ? "Thank you: your report was sent." : `Not sent: ${message.message}`);
    }
    reportFlagged();
  }

  // ---- the worker's one-off messages -------------------------------------------------------------------

  const tabHandlers = {
    [MSG.workerToTab.ping]: () => true,
    [MSG.workerToTab.manualCheck]: (message) => {
      if (typeof message.url !== "string") return false;
      manual.check(message.url);
      return true;
    },
  };

  function onRuntimeMessage(message, sender, sendResponse) {
    const type = message?.type;
    if (Object.hasOwn(tabHandlers, type) && tabHandlers[type](message)) sendResponse({ ok: true });
    return false;
  }

  // ---- lifecycle -------------------------------------------------------------------------------------

  function teardown() {
    finder.stop();
    badges.stop();
    layout.stop();
    manual.stop();
    connection.stop();
    try {
      ext.runtime.onMessage.removeListener(onRuntimeMessage);
    } catch {
      // The extension context is gone already.
    }
    overlay.remove();
    RC.started = false;
  }

  layout.start();
  manual.start();
  ext.runtime.onMessage.addListener(onRuntimeMessage);
  connection.connect(true);
})();
