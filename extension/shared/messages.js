// The messages RealCheck's parts send each other, by channel: the one definition of their types. A classic
// script, so that content scripts can load it (first of CONTENT_FILES); the worker and the extension pages
// import it through shared/message-types.js. It sets globalThis.__realcheck.MSG and .PAGE_PORT.
(() => {
  const RC = (globalThis.__realcheck ??= {});
  if (RC.MSG) return;

  /** The name of the long-lived port between a page's content script and the worker. */
  RC.PAGE_PORT = "realcheck-page";

  RC.MSG = Object.freeze({
    // Content script -> worker, over the page port.
    pageToWorker: Object.freeze({
      hello: "hello",
      check: "check",
      flagged: "flagged",
      feedback: "feedback",
      keepalive: "keepalive",
    }),
    // Worker -> content script, over the page port.
    workerToPage: Object.freeze({
      config: "config",
      result: "result",
      recheck: "recheck",
      feedbackDone: "feedback-done",
      feedbackFailed: "feedback-failed",
    }),
    // Worker -> a tab's content script, by tabs.sendMessage (the script may not be running yet: no port).
    workerToTab: Object.freeze({ ping: "ping", manualCheck: "manual-check" }),
    // The extension's own pages (popup, options, welcome) -> worker, by runtime.sendMessage.
    extensionPageToWorker: Object.freeze({
      popupState: "popup-state",
      setSite: "set-site",
      testConnection: "test-connection",
      applyAccess: "apply-access",
    }),
  });
})();
