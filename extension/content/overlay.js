// RealCheck overlay: badges and blur veils drawn over images without touching the page's layout.
//
// Everything lives in one shadow root attached to <html> (page styles cannot reach in, ours cannot leak
// out); badges are positioned from the image's bounding box, so images are never wrapped or moved, and
// positions are refreshed when the page scrolls, resizes or changes (see layout.js).
(() => {
  const RC = (globalThis.__realcheck ??= {});
  if (RC.Overlay) return;

  const CSS = `
    :host { all: initial; }
    .badge, .veil, .toast { position: absolute; top: 0; left: 0; box-sizing: border-box; pointer-events: auto; }
    .badge { z-index: 2; } /* the verdict stays readable on top of a blur veil */
    .veil { z-index: 1; }
    .badge {
      display: flex; flex-direction: column; gap: 2px; width: max-content; max-width: 260px; padding: 3px 8px;
      font: 600 12px/1.35 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
      color: #fff; background: #37474f; border: 1px solid rgba(255, 255, 255, 0.92); border-radius: 6px;
      /* A light border inside a dark ring: readable on white, black and busy photos alike. */
      box-shadow: 0 0 0 1px rgba(0, 0, 0, 0.6), 0 2px 6px rgba(0, 0, 0, 0.35);
      cursor: pointer; user-select: none; white-space: nowrap; letter-spacing: 0.01em;
    }
    .badge[hidden], .veil[hidden] { display: none; }
    .line { display: flex; align-items: center; gap: 6px; }
    .details { display: none; font-weight: 400; white-space: pre-line; }
    .label { overflow: hidden; text-overflow: ellipsis; }
    .mark { font-weight: 600; padding: 0 4px; border-radius: 4px; background: #0b57d0; }
    .badge[data-capture="signed"] { border-color: #8ab4f8; }
    .badge.expanded .details { display: block; }
    .badge[data-state="done"][data-verdict="ai"] { background: #b3261e; }
    /* No AI signs is not a certificate: neutral grey, never green. Green-ish blue is kept for evidence (the
       signed-capture mark). */
    .badge[data-state="done"][data-verdict="real"] { background: #5f6368; }
    .badge[data-state="done"][data-verdict="uncertain"] { background: #7a4d00; }
    .badge[data-state="unavailable"], .badge[data-state="failed"], .badge[data-state="skipped"] { background: #50555a; }
    .badge.compact { padding: 2px 6px; font-size: 11px; }
    .spinner {
      width: 9px; height: 9px; border-radius: 50%; border: 2px solid rgba(255, 255, 255, 0.35);
      border-top-color: #fff; animation: spin 0.9s linear infinite; flex: none;
    }
    @keyframes spin { to { transform: rotate(360deg); } }
    @media (prefers-reduced-motion: reduce) { .spinner { animation: none; border-top-color: rgba(255, 255, 255, 0.35); } }
    .veil {
      display: flex; align-items: center; justify-content: center; cursor: pointer;
      -webkit-backdrop-filter: blur(18px) saturate(0.7); backdrop-filter: blur(18px) saturate(0.7);
      background: rgba(32, 33, 36, 0.25);
    }
    .veil span {
      font: 600 13px/1.3 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #fff;
      background: rgba(0, 0, 0, 0.72); padding: 5px 10px; border-radius: 6px; text-align: center;
    }
    .feedback { display: none; margin-top: 4px; font-weight: 400; white-space: normal; cursor: default; }
    .badge.expanded[data-state="done"] .feedback { display: block; }
    .feedback button {
      font: inherit; font-size: 11px; margin: 2px 4px 2px 0; padding: 1px 6px; color: #fff; cursor: pointer;
      background: rgba(0, 0, 0, 0.3); border: 1px solid rgba(255, 255, 255, 0.85); border-radius: 4px;
    }
    .feedback label { display: block; font-size: 11px; cursor: pointer; }
    .badge[data-reported] { border-style: dashed; }
    .toast { position: fixed; top: 12px; right: 12px; left: auto; max-width: 320px; }
    .notice {
      position: fixed; bottom: 12px; right: 12px; max-width: 340px; box-sizing: border-box; pointer-events: auto;
      padding: 8px 28px 8px 10px; border-radius: 8px; background: #50555a; color: #fff;
      font: 12px/1.4 system-ui, sans-serif; box-shadow: 0 2px 8px rgba(0,0,0,.35);
    }
    .notice .close {
      position: absolute; top: 4px; right: 6px; border: 0; background: none; color: #fff; font-size: 15px; cursor: pointer;
    }
    .sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
  `;

  // Pixels alone never prove a photograph real: below the band the badge says only that no AI signs were found.
  const WORDS = { ai: "AI", real: "No AI signs", uncertain: "Unsure" };
  const SENTENCES = {
    ai: "likely AI-generated",
    real: "no signs of AI generation found (not proof that it is a real photograph)",
    uncertain: "uncertain (between real and AI-generated)",
  };
  // What a user said of an image is their claim, in their words.
  const REPORTED_WORDS = { ai: "AI", real: "Real" };

  function element(tag, className, text = "") {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  const capitalised = (text) => `${text[0].toUpperCase()}${text.slice(1)}`;
  const percent = (value) => `${Math.round(Number(value) * 100)}%`;
  const REPORTED = { ai: "AI-generated", real: "a real photograph" };

  /**
   * Provenance for the details: first what the file says, in plain sentences; the findings and their trust
   * codes after, under "Technical details".
   */
  function provenanceLines(provenance) {
    if (!provenance?.evidence?.length) return "";
    const plain = provenance.explanation ? `\n${provenance.explanation}` : "";
    const lines = provenance.evidence.map((item) => `• ${item.source}: ${item.detail} (${item.trust})`);
    return `${plain}\nTechnical details:\n${lines.join("\n")}`;
  }

  // Whose ranges a result's are, when not the model's main rule's.
  const RULE_SCORES = { small_image: "Scores of small images", compressed_image: "Scores of heavily compressed JPEGs" };

  /** The three ranges in the words every face uses (small images and heavily compressed JPEGs have their
   * own), or "" when the result does not carry them. */
  function rangesSentence(ranges, imageRule) {
    if (!ranges) return "";
    const low = Number(ranges.realBelow).toFixed(2);
    const high = Number(ranges.aiAbove).toFixed(2);
    const scores = RULE_SCORES[imageRule] ?? "Scores";
    if (low === high) return ` ${scores}: AI from ${high}, no AI signs below.`;
    return ` ${scores}: AI above ${high}, unsure ${low}–${high}, no AI signs below ${low}.`;
  }

  /** Visible label, longer details and a screen-reader sentence for a result. */
  function describe(result, subject) {
    const state = result?.state ?? "pending";
    if (state === "done") {
      const model = `${result.model?.name ?? "model"} ${result.model?.version ?? ""}`.trim();
      const score = Number(result.score).toFixed(2);
      const word = WORDS[result.verdict] ?? result.verdict;
      const provenance = result.provenance ?? null;
      const label = result.verdict === "ai" ? `AI ${percent(result.score)}` : `${word} · AI ${percent(result.score)}`;
      const sentence = SENTENCES[result.modelVerdict ?? result.verdict] ?? result.verdict;
      const measured = result.accuracy ? ` ${result.accuracy}` : "";
      const details = `${sentence[0].toUpperCase()}${sentence.slice(1)}: P(AI) = ${score}.${rangesSentence(result.ranges, result.imageRule)} Model ${model}.${measured}`;
      if (result.userLabel) {
        // The user's own report stands for this image; the model's verdict stays visible beside it.
        const mine = REPORTED[result.userLabel];
        return {
          label: `${REPORTED_WORDS[result.userLabel]} (your report)`,
          short: `${REPORTED_WORDS[result.userLabel]}*`,
          details: `You reported this image as ${mine}. The model said: ${details}` + provenanceLines(provenance),
          spoken: `RealCheck: you reported ${subject} as ${mine}; the model said ${sentence}, P(AI) ${percent(result.score)}, model ${model}.`,
        };
      }
      if (result.basis === "provenance" && provenance?.summary) {
        // The file declares itself AI-generated: the badge says so and by what, the model's score beside it.
        return {
          label: provenance.summary.split(" [")[0],
          short: "AI",
          details: `${provenance.explanation || `${provenance.summary}.`} The model alone says ${sentence}: P(AI) = ${score}.${rangesSentence(result.ranges, result.imageRule)} Model ${model}.` + provenanceLines({ ...provenance, explanation: "" }),
          spoken: `RealCheck: ${subject} is AI-generated by its own declaration: ${provenance.summary}. The model alone gives P(AI) ${percent(result.score)}.`,
        };
      }
      const capture =
        provenance?.signedCapture && !provenance.explanation ? " Signed capture: Content Credentials say a camera took it." : "";
      return {
        label,
        short: result.verdict === "uncertain" ? "?" : word,
        details: details + capture + provenanceLines(provenance),
        mark: provenance?.signedCapture ? "✓ signed capture" : "",
        spoken: `RealCheck: ${subject} is ${SENTENCES[result.verdict] ?? result.verdict}, P(AI) ${percent(result.score)}, model ${model}.${capture}`,
      };
    }
    if (state === "unavailable") {
      const wait = result.retryInMs ? ` Retrying in ${Math.max(1, Math.round(result.retryInMs / 1000))} s.` : "";
      return {
        label: "RealCheck unavailable",
        short: "–",
        details: `The RealCheck server cannot answer right now.${wait}`,
        spoken: `RealCheck: ${subject} could not be checked yet, the server is unavailable; retrying.`,
      };
    }
    if (state === "skipped" && result.code === "tiny") {
      return {
        label: "Too small to judge",
        short: "–",
        details: `${capitalised(result.message ?? "the image is small")}: too small to judge (RealCheck needs 100 pixels a side).`,
        spoken: `RealCheck: ${subject} is too small to judge.`,
      };
    }
    if (state === "failed" && result.code === "no_access") {
      // Not a failure of the image: RealCheck has not been allowed to read its host yet.
      return {
        label: "No access · allow",
        short: "!",
        details: `${result.message ?? "RealCheck may not read this image"}.`,
        spoken: `RealCheck may not read ${subject} yet: allow it from RealCheck's toolbar button.`,
      };
    }
    if (state === "failed" || state === "skipped") {
      return {
        label: state === "failed" ? "Check failed" : "Not checked",
        short: "!",
        details: result.message ?? "",
        spoken: `RealCheck could not check ${subject}: ${result.message ?? "unknown error"}.`,
      };
    }
    return {
      label: "Checking…",
      short: "",
      details: "Waiting for the RealCheck server.",
      spoken: `RealCheck is checking ${subject}.`,
    };
  }

  // Only the opposite of a firm verdict is offered; after an unsure one, either answer is news.
  const REPORT_CHOICES = {
    ai: [["real", "Wrong? It's real"]],
    real: [["ai", "Wrong? It's AI"]],
    uncertain: [
      ["real", "I know it's real"],
      ["ai", "I know it's AI"],
    ],
  };

  /** The report buttons and the box that shares the image; `onFeedback(label, share)`. */
  function feedbackControls(onFeedback) {
    const box = element("div", "feedback");
    const share = document.createElement("input");
    share.type = "checkbox";
    share.className = "share";
    const shareLabel = element("label");
    shareLabel.append(share, " Send the image too (to help retrain the model)");
    const buttons = element("span", "report-buttons");
    buttons.addEventListener("click", (event) => {
      const label = event.target?.dataset?.label;
      if (label) onFeedback(label, share.checked);
    });
    const status = element("div", "feedback-status");
    status.setAttribute("role", "status");
    box.append(buttons, shareLabel, status);
    // A click in here is an answer, not a click on the badge (which would fold it).
    box.addEventListener("click", (event) => event.stopPropagation());
    return box;
  }

  class Overlay {
    constructor() {
      this.host = document.createElement("realcheck-overlay");
      const style = {
        all: "initial",
        position: "fixed",
        top: "0",
        left: "0",
        width: "0",
        height: "0",
        overflow: "visible",
        "z-index": "2147483647",
        "pointer-events": "none",
        display: "block",
      };
      for (const [name, value] of Object.entries(style)) this.host.style.setProperty(name, value, "important");
      // Open: tests and assistive tools can read the badges; there is nothing secret in them.
      this.root = this.host.attachShadow({ mode: "open" });
      const sheet = document.createElement("style");
      sheet.textContent = CSS;
      this.live = document.createElement("div");
      this.live.className = "sr-only";
      this.live.setAttribute("role", "status");
      this.live.setAttribute("aria-live", "polite");
      this.root.append(sheet, this.live);
      this.attach();
    }

    /** Put the overlay (back) into the document; pages that rewrite <html> may have dropped it. */
    attach() {
      if (!this.host.isConnected) document.documentElement.append(this.host);
    }

    remove() {
      this.host.remove();
    }

    /** Announce a sentence to screen readers (used for checks the user asked for). */
    announce(text) {
      this.live.textContent = "";
      setTimeout(() => (this.live.textContent = text), 50);
    }

    /** A new badge element (hidden until placed); with `onFeedback`, its details offer the report buttons. */
    createBadge(onClick, onFeedback = null) {
      const badge = document.createElement("div");
      badge.className = "badge";
      badge.setAttribute("role", "img");
      badge.hidden = true;
      badge.append(element("div", "line"), element("div", "details"));
      if (onFeedback) badge.append(feedbackControls(onFeedback));
      badge.addEventListener("click", (event) => {
        event.preventDefault();
        event.stopPropagation();
        onClick?.();
      });
      this.root.append(badge);
      return badge;
    }

    /** Draw `result` on `badge`; `compact` shows a short label, `expanded` the details. */
    render(badge, result, { compact = false, expanded = false, subject = "this image" } = {}) {
      const text = describe(result, subject);
      const state = result?.state ?? "pending";
      badge.dataset.state = state;
      if (state === "done") badge.dataset.verdict = result.userLabel ?? result.verdict;
      else delete badge.dataset.verdict;
      if (text.mark) badge.dataset.capture = "signed";
      else delete badge.dataset.capture;
      if (state === "done" && result.userLabel) badge.dataset.reported = "true";
      else delete badge.dataset.reported;
      badge.classList.toggle("compact", compact);
      badge.classList.toggle("expanded", expanded);
      const line = badge.querySelector(".line");
      const parts = [];
      if (state === "pending") parts.push(element("span", "spinner"));
      parts.push(element("span", "label", compact ? text.short : text.label));
      if (text.mark && !compact) parts.push(element("span", "mark", text.mark));
      line.replaceChildren(...parts);
      badge.querySelector(".details").textContent = text.details;
      const buttons = badge.querySelector(".report-buttons");
      const model = state === "done" ? (result.modelVerdict ?? result.verdict) : null;
      if (buttons && buttons.dataset.verdict !== model) {
        buttons.dataset.verdict = model ?? "";
        buttons.replaceChildren(
          ...(REPORT_CHOICES[model] ?? []).map(([label, words]) => {
            const button = element("button", `report-${label}`, words);
            button.type = "button";
            button.dataset.label = label;
            return button;
          }),
        );
      }
      badge.title = `${text.label}. ${text.details}`;
      badge.setAttribute("aria-label", text.spoken);
      return text;
    }

    /** Say how a report from this badge went. */
    feedbackStatus(badge, text) {
      const status = badge.querySelector(".feedback-status");
      if (status) status.textContent = text;
    }

    /** A veil that blurs what lies under it until clicked. */
    createVeil(onReveal) {
      const veil = document.createElement("div");
      veil.className = "veil";
      veil.hidden = true;
      veil.setAttribute("role", "button");
      veil.tabIndex = 0;
      veil.setAttribute("aria-label", "Image blurred: RealCheck says it is likely AI-generated. Activate to show it.");
      const text = element("span", "", "Likely AI-generated");
      text.append(document.createElement("br"), "Click to show");
      veil.append(text);
      const reveal = (event) => {
        event.preventDefault();
        event.stopPropagation();
        onReveal?.();
      };
      veil.addEventListener("click", reveal);
      veil.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") reveal(event);
      });
      this.root.append(veil);
      return veil;
    }

    /** One notice for the whole page (`text`), or none (null): the server-down state, not a pill per image. */
    notice(text) {
      let notice = this.root.querySelector(".notice");
      if (!text) {
        notice?.remove();
        this.noticeClosed = false; // the next outage may say so again
        return;
      }
      if (!notice && this.noticeClosed) return; // the reader closed it: once per outage is enough
      if (!notice) {
        notice = element("div", "notice");
        notice.setAttribute("role", "status");
        const close = element("button", "close", "×");
        close.type = "button";
        close.setAttribute("aria-label", "Close this notice");
        close.addEventListener("click", () => {
          notice.remove();
          this.noticeClosed = true;
        });
        notice.append(element("span", "text"), close);
        this.root.append(notice);
      }
      notice.querySelector(".text").textContent = text;
    }

    /** A fixed panel for a verdict whose image cannot be found on the page any more. */
    createToast() {
      const badge = this.createBadge(() => badge.remove());
      badge.classList.add("toast");
      return badge;
    }
  }

  RC.Overlay = Overlay;
  RC.describe = describe;
})();
