// RealCheck results: what the page asked the worker about each image URL, and what it answered. Requests
// made together leave in one "check" message; a URL is asked about once per mode (automatic, or the user's
// right-click, which lifts the size gate) until a re-check.
(() => {
  const RC = (globalThis.__realcheck ??= {});
  if (RC.Results) return;

  const FINAL = new Set(["done", "failed", "skipped"]);
  const MODES = ["auto", "manual"];
  const BATCH_MS = 15;

  const unanswered = (entry, mode) => entry.sent[mode] && !FINAL.has(entry[mode]?.state);

  class Results {
    /** `send(items)` sends one batch of [{url, manual}] to the worker; false when it cannot now (not connected). */
    constructor(send) {
      this.send = send;
      this.entries = new Map(); // url -> {auto, manual: result or null, sent: {auto, manual}}
      this.outbox = new Map(); // url -> manual
      this.flushTimer = null;
    }

    /** Ask about `url` (`again`: even if it has a verdict, as after a model change). */
    request(url, manual, again = false) {
      const entry = this.entries.get(url) ?? { auto: null, manual: null, sent: { auto: false, manual: false } };
      this.entries.set(url, entry);
      if (!again && (entry.auto?.state === "done" || entry.manual?.state === "done")) return;
      const mode = manual ? "manual" : "auto";
      if (entry.sent[mode]) return;
      entry.sent[mode] = true;
      this.queue(url, manual);
    }

    queue(url, manual) {
      this.outbox.set(url, this.outbox.get(url) || manual);
      if (this.flushTimer) return;
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        const items = [...this.outbox].map(([queued, isManual]) => ({ url: queued, manual: isManual }));
        if (this.send(items)) this.outbox.clear();
      }, BATCH_MS);
    }

    /** Ask again for everything sent and not answered for good (the worker was stopped or restarted). */
    resend() {
      for (const [url, entry] of this.entries) {
        for (const mode of MODES) if (unanswered(entry, mode)) this.queue(url, mode === "manual");
      }
    }

    /** True while some image waits for an answer. */
    get waiting() {
      return [...this.entries.values()].some((entry) => MODES.some((mode) => unanswered(entry, mode)));
    }

    /** Take the worker's answer for `url`; false when it changes nothing (not asked about, or a verdict stands). */
    receive(url, manual, result) {
      const entry = this.entries.get(url);
      if (!entry || !result) return false;
      const mode = manual ? "manual" : "auto";
      // A verdict stands until replaced by another verdict (a model change re-checks without blanking).
      if (entry[mode]?.state === "done" && result.state !== "done") return false;
      entry[mode] = result;
      return true;
    }

    /** True when the page asked about `url`. */
    has(url) {
      return this.entries.has(url);
    }

    /** The user's report was stored: their label now stands for the image's verdicts. */
    label(url, userLabel) {
      const entry = this.entries.get(url);
      if (!entry) return;
      for (const mode of MODES) if (entry[mode]?.state === "done") entry[mode] = { ...entry[mode], userLabel };
    }

    /**
     * Make URLs askable again: "all" (the model changed) keeps showing the old verdicts until new ones arrive;
     * "failed" (the server, key or permissions changed) forgets every answer that is not a verdict or a skip.
     */
    reset(what) {
      for (const entry of this.entries.values()) {
        for (const mode of MODES) {
          const state = entry[mode]?.state;
          if (what === "all") entry.sent[mode] = false;
          else if (state !== "done" && state !== "skipped") {
            entry[mode] = null;
            entry.sent[mode] = false;
          }
        }
      }
    }

    /** The result a badge for `url` shows: any verdict first, else the answer for its own mode (or null). */
    resultFor(url, manual) {
      const entry = this.entries.get(url);
      if (!entry) return null;
      if (entry.auto?.state === "done") return entry.auto;
      if (entry.manual?.state === "done") return entry.manual;
      return manual ? entry.manual : entry.auto;
    }
  }

  /** The verdict a badge stands for: the user's own report over the model's. */
  RC.shownVerdict = (result) => result?.userLabel ?? result?.verdict;
  RC.isFinal = (result) => FINAL.has(result?.state);
  RC.Results = Results;
})();
