// RealCheck badges: the images the page shows a badge on ("targets"), each with its badge, its blur veil and
// whether it is on screen. A target is drawn from its URL's result (results.js) and the page's settings;
// where it goes on screen is layout.js's job.
(() => {
  const RC = (globalThis.__realcheck ??= {});
  if (RC.Badges) return;

  const NARROW = 170; // badges on images narrower than this use the compact style

  /** What a badge calls its image: the alt text when there is one. */
  function subjectOf(target) {
    const alt = target.el.getAttribute?.("alt")?.trim();
    if (alt) return `the image "${alt.slice(0, 80)}"`;
    return target.kind === "background" ? "this background image" : "this image";
  }

  class Badges {
    /**
     * `results` is the page's Results; `config()` the page's settings ({auto, badgeStyle, blurFlagged});
     * `onFeedback(target, label, share)` a "Wrong? It's ..." click; `onMoved()` asks for a layout;
     * `onDropped()` hears that a target went.
     */
    constructor({ overlay, results, config, onFeedback, onMoved, onDropped }) {
      Object.assign(this, { overlay, results, config, onFeedback, onMoved, onDropped });
      this.targets = new Map(); // element -> target {el, kind, url, manual, badge, veil, revealed, expanded}
      this.visible = new Set();
      this.visibleObserver = new IntersectionObserver((entries) => {
        for (const entry of entries) {
          const target = this.targets.get(entry.target);
          if (!target) continue;
          if (entry.isIntersecting) this.visible.add(target);
          else this.visible.delete(target);
        }
        this.onMoved();
      });
      this.sizeObserver = new ResizeObserver(() => this.onMoved());
    }

    /** The target of `element`, or undefined. */
    get(element) {
      return this.targets.get(element);
    }

    /** All targets, as a list (safe to drop targets while going through it). */
    all() {
      return [...this.targets.values()];
    }

    /** Show a badge on `element` for the image at `url` (`manual`: the user asked, it stays and opens). */
    show(element, kind, url, manual) {
      let target = this.targets.get(element);
      if (!target) {
        target = { el: element, kind, url: "", manual: false, badge: null, veil: null, revealed: false, expanded: false };
        this.targets.set(element, target);
        this.visibleObserver.observe(element);
        this.sizeObserver.observe(element);
      }
      // A check the user asked for shows its full label, folded: the details open on a click, so a panel
      // never covers the site's header or navigation unasked.
      if (manual) target.manual = true;
      if (target.url !== url) {
        target.url = url;
        target.revealed = false;
      }
      this.results.request(url, target.manual);
      this.render(target);
      return target;
    }

    drop(target) {
      target.badge?.remove();
      target.veil?.remove();
      this.targets.delete(target.el);
      this.visible.delete(target);
      this.visibleObserver.unobserve(target.el);
      this.sizeObserver.unobserve(target.el);
      this.onDropped();
    }

    /** Drop the badges automatic mode drew (those the user asked for stay). */
    dropAutomatic() {
      for (const target of this.all()) if (!target.manual) this.drop(target);
    }

    /** Draw every target again, or those of one URL. */
    renderAll(url = null) {
      for (const target of this.targets.values()) if (url === null || target.url === url) this.render(target);
    }

    /** Ask again for every target still on the page (`again`: even those with a verdict), and redraw it. */
    recheck(again) {
      for (const target of this.targets.values()) {
        if (!target.el.isConnected || !target.url) continue;
        this.results.request(target.url, target.manual, again);
        this.render(target);
      }
    }

    /** How many targets show an "AI" verdict. */
    flaggedCount() {
      let count = 0;
      for (const target of this.targets.values()) {
        const result = this.results.resultFor(target.url, target.manual);
        if (result?.state === "done" && RC.shownVerdict(result) === "ai") count += 1;
      }
      return count;
    }

    render(target) {
      const result = this.results.resultFor(target.url, target.manual);
      const state = result?.state ?? "pending";
      const config = this.config();
      // A down server is one notice for the page (main.js), not a grey pill on every photo.
      if (!target.manual && (!config.auto || state === "skipped" || state === "unavailable")) {
        this.clear(target);
        return;
      }
      if (!target.badge) {
        target.badge = this.overlay.createBadge(
          () => {
            if (!target.expanded) this.collapseAll(); // one details panel open at a time
            target.expanded = !target.expanded;
            this.render(target);
          },
          (label, share) => this.onFeedback(target, label, share),
        );
      }
      // Details opened for one answer close when another replaces it (a new model, a retry that succeeded).
      const shown = `${state} ${result?.verdict ?? ""} ${result?.model?.version ?? ""}`;
      if (target.shown?.startsWith("done") && target.shown !== shown) target.expanded = false;
      target.shown = shown;
      const narrow = target.el.getBoundingClientRect().width < NARROW;
      // Automatic badges stay small while they wait; a check the user asked for says what is happening.
      const compact = config.badgeStyle === "compact" || narrow || (!target.manual && state === "pending");
      this.overlay.render(target.badge, result ?? { state: "pending" }, {
        compact: compact && !target.expanded,
        expanded: target.expanded,
        subject: subjectOf(target),
      });
      const blur = config.blurFlagged && state === "done" && RC.shownVerdict(result) === "ai" && !target.revealed;
      this.veil(target, blur);
      this.onMoved();
    }

    /** Fold every open details panel. */
    collapseAll() {
      for (const other of this.targets.values()) {
        if (!other.expanded) continue;
        other.expanded = false;
        this.render(other);
      }
    }

    /** Remove a target's badge and veil (it stays a target: a setting may bring them back). */
    clear(target) {
      target.badge?.remove();
      target.badge = null;
      target.veil?.remove();
      target.veil = null;
    }

    veil(target, blur) {
      if (blur && !target.veil) {
        target.veil = this.overlay.createVeil(() => {
          target.revealed = true;
          this.render(target);
        });
      } else if (!blur && target.veil) {
        target.veil.remove();
        target.veil = null;
      }
    }

    stop() {
      this.visibleObserver.disconnect();
      this.sizeObserver.disconnect();
      this.targets.clear();
    }
  }

  RC.Badges = Badges;
  RC.subjectOf = subjectOf;
})();
