// RealCheck finder: which elements show a photograph worth checking, and when.
//
// Candidates are <img> elements (srcset and <picture> resolved by the browser: we read currentSrc) and
// elements with a CSS background image. Nothing is checked until an element comes within ROOT_MARGIN of
// the viewport (IntersectionObserver), so off-screen images cost nothing; new and changed elements are
// found by a MutationObserver, and image loads (lazy loading, src swaps) re-evaluate their element.
(() => {
  const RC = (globalThis.__realcheck ??= {});
  if (RC.Finder) return;

  const ROOT_MARGIN = "300px";
  const SKIP_TAGS = new Set([
    "IMG", "SVG", "VIDEO", "CANVAS", "SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE", "IFRAME", "OBJECT", "EMBED",
    "HEAD", "LINK", "META", "BR", "INPUT", "SELECT", "TEXTAREA", "OPTION", "REALCHECK-OVERLAY",
  ]);

  /** True for URLs of vector images (never photographs). */
  function isVector(url) {
    return /^data:image\/svg\+xml/i.test(url) || /\.svgz?(?:[?#]|$)/i.test(url);
  }

  /** The first url(...) of a computed background-image value, or "" (gradients and none give ""). */
  function backgroundUrl(value) {
    const match = /url\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([^)\s]*))\s*\)/.exec(value ?? "");
    if (!match) return "";
    const raw = (match[1] ?? match[2] ?? match[3] ?? "").replace(/\\(.)/g, "$1");
    try {
      return new URL(raw, document.baseURI).href;
    } catch {
      return "";
    }
  }

  const idle = (callback) =>
    globalThis.requestIdleCallback ? requestIdleCallback(callback, { timeout: 100 }) : setTimeout(callback, 16);

  class Finder {
    /**
     * `onCandidate(element, kind, url)` fires for an element that shows a checkable image near the viewport
     * (again when its image changes); `onRejected(element)` when an element stops being one.
     */
    constructor({ onCandidate, onRejected, onChange }) {
      this.onCandidate = onCandidate;
      this.onRejected = onRejected;
      this.onChange = onChange ?? (() => {});
      this.minSize = 0;
      this.running = false;
      this.tracked = new WeakMap(); // element -> "img" | "background"
      this.near = new Set();
      this.pendingScan = [];
      this.dirty = new Set();
      this.shadowRoots = new WeakSet();
      this.onLoad = (event) => {
        const target = event.target;
        if (target instanceof HTMLImageElement && this.near.has(target)) this.evaluate(target);
      };
    }

    /** Look for images whose sides are at least `minSize` pixels, shown and natural. */
    start(minSize) {
      if (this.running) return;
      this.running = true;
      this.minSize = minSize;
      this.nearObserver = new IntersectionObserver((entries) => this.onIntersect(entries), {
        rootMargin: ROOT_MARGIN,
      });
      // Elements that were too small may grow (responsive layouts, late CSS): look at them again then.
      this.resizeObserver = new ResizeObserver((entries) => {
        for (const entry of entries) if (this.near.has(entry.target)) this.dirty.add(entry.target);
        this.flushSoon();
      });
      this.mutationObserver = new MutationObserver((records) => this.onMutations(records));
      document.addEventListener("load", this.onLoad, true);
      this.observeRoot(document);
      this.scan(document.documentElement);
    }

    stop() {
      if (!this.running) return;
      this.running = false;
      this.nearObserver.disconnect();
      this.resizeObserver.disconnect();
      this.mutationObserver.disconnect();
      document.removeEventListener("load", this.onLoad, true);
      this.tracked = new WeakMap();
      this.near.clear();
      this.pendingScan = [];
      this.dirty.clear();
    }

    observeRoot(root) {
      if (root !== document && !this.shadowRoots.has(root)) {
        // Load events do not leave a shadow root: an image there that was still loading when first seen
        // would otherwise never be looked at again. (The listener stays: it does nothing while stopped.)
        this.shadowRoots.add(root);
        root.addEventListener("load", this.onLoad, true);
      }
      this.mutationObserver.observe(root, {
        subtree: true,
        childList: true,
        attributes: true,
        attributeFilter: ["src", "srcset", "sizes", "style", "class"],
      });
    }

    /** Find candidates under `root`: images at once, backgrounds in idle time (they need computed styles). */
    scan(root) {
      if (!root || !this.running) return;
      if (root instanceof HTMLImageElement) this.track(root, "img");
      for (const image of root.querySelectorAll?.("img") ?? []) this.track(image, "img");
      this.pendingScan.push(root);
      if (this.pendingScan.length === 1) idle((deadline) => this.scanBackgrounds(deadline));
    }

    scanBackgrounds(deadline) {
      if (!this.running) return;
      const budget = () => (deadline?.timeRemaining ? deadline.timeRemaining() > 2 : true);
      const started = performance.now();
      while (this.pendingScan.length && (budget() || performance.now() - started < 8)) {
        const root = this.pendingScan.shift();
        const walker = document.createTreeWalker(root, NodeFilter.SHOW_ELEMENT);
        for (let node = walker.currentNode; node; node = walker.nextNode()) {
          if (node.shadowRoot) {
            // Open shadow roots (web components) hold images too.
            this.observeRoot(node.shadowRoot);
            this.scan(node.shadowRoot);
          }
          if (!SKIP_TAGS.has(node.tagName?.toUpperCase()) && this.largeEnough(node) && this.backgroundOf(node)) {
            this.track(node, "background");
          }
        }
      }
      if (this.pendingScan.length) idle((next) => this.scanBackgrounds(next));
    }

    largeEnough(element) {
      const rect = element.getBoundingClientRect();
      return rect.width >= this.minSize && rect.height >= this.minSize;
    }

    backgroundOf(element) {
      const url = backgroundUrl(getComputedStyle(element).backgroundImage);
      return url && !isVector(url) ? url : "";
    }

    track(element, kind) {
      const known = this.tracked.get(element);
      if (known === kind || known === "img") return;
      this.tracked.set(element, kind);
      this.nearObserver.observe(element);
    }

    onIntersect(entries) {
      for (const entry of entries) {
        if (entry.isIntersecting) {
          this.near.add(entry.target);
          this.resizeObserver.observe(entry.target);
          this.evaluate(entry.target);
        } else {
          this.near.delete(entry.target);
          this.resizeObserver.unobserve(entry.target);
        }
      }
    }

    onMutations(records) {
      for (const record of records) {
        if (record.type === "childList") {
          for (const node of record.addedNodes) if (node.nodeType === Node.ELEMENT_NODE) this.scan(node);
        } else if (record.target.nodeType === Node.ELEMENT_NODE) {
          this.dirty.add(record.target);
        }
      }
      this.flushSoon();
      this.onChange();
    }

    flushSoon() {
      if (this.flushTimer) return;
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        const elements = [...this.dirty];
        this.dirty.clear();
        for (const element of elements) {
          if (!element.isConnected || !this.running) continue;
          const kind = this.tracked.get(element);
          if (kind) {
            if (this.near.has(element)) this.evaluate(element);
          } else if (!SKIP_TAGS.has(element.tagName.toUpperCase()) && this.largeEnough(element) && this.backgroundOf(element)) {
            // A style or class change gave this element a background image.
            this.track(element, "background");
          }
        }
      }, 50);
    }

    /** Decide about one element near the viewport: report it as a candidate or as rejected. */
    evaluate(element) {
      if (!this.running || !element.isConnected) return;
      const kind = this.tracked.get(element);
      let url = "";
      if (kind === "img") {
        if (!element.complete) return; // its load event brings it back here
        url = element.currentSrc || element.src;
        const small = element.naturalWidth < this.minSize || element.naturalHeight < this.minSize;
        if (!url || isVector(url) || small || !this.largeEnough(element)) url = "";
      } else if (kind === "background") {
        url = this.largeEnough(element) ? this.backgroundOf(element) : "";
      }
      if (url) this.onCandidate(element, kind, url);
      else this.onRejected(element);
    }
  }

  RC.Finder = Finder;
  RC.backgroundUrl = backgroundUrl;
})();
