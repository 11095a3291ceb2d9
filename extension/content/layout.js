// RealCheck layout: where each badge and veil goes on screen. A badge sits in the top-left corner of the
// part of its image that shows (below a sticky header that covers it); a veil covers that part. Positions
// follow scrolling, resizing and page changes, at most once per frame, reading every position before
// writing any.
(() => {
  const RC = (globalThis.__realcheck ??= {});
  if (RC.Layout) return;

  const SLOW_LAYOUT_MS = 500;

  class Layout {
    /** `badges` is the page's Badges: its targets, which of them are on screen, and how to drop one. */
    constructor({ overlay, badges }) {
      this.overlay = overlay;
      this.badges = badges;
      this.queued = false;
      this.fixedLayer = new WeakMap();
      this.schedule = this.schedule.bind(this);
      this.slowTimer = null;
    }

    /** Follow the page: scrolling and resizing ask for a layout, and a slow timer catches the rest. */
    start() {
      addEventListener("scroll", this.schedule, { capture: true, passive: true });
      addEventListener("resize", this.schedule, { passive: true });
      // Catches movement no event reports (CSS transitions, transform-based scrolling).
      this.slowTimer = setInterval(() => {
        if (this.badges.visible.size) this.run();
      }, SLOW_LAYOUT_MS);
    }

    stop() {
      removeEventListener("scroll", this.schedule, true);
      removeEventListener("resize", this.schedule);
      clearInterval(this.slowTimer);
    }

    /** Lay out in the next frame (once, however often it is asked for). */
    schedule() {
      if (this.queued) return;
      this.queued = true;
      requestAnimationFrame(() => {
        this.queued = false;
        this.run();
      });
    }

    run() {
      this.overlay.attach();
      const viewport = { width: document.documentElement.clientWidth, height: document.documentElement.clientHeight };
      const placed = this.measure().map(([target, rect]) => [target, rect, this.place(target, rect, viewport)]);
      // All reads above, all writes below: one layout per frame, however many badges.
      for (const [target, rect, place] of placed) this.write(target, rect, place, viewport);
    }

    /** [target, its on-screen box or null] for every target with a badge; targets gone from the page go. */
    measure() {
      const measured = [];
      for (const target of this.badges.all()) {
        if (!target.el.isConnected) {
          this.badges.drop(target);
          continue;
        }
        if (!target.badge) continue;
        if (!this.badges.visible.has(target)) {
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
      return measured;
    }

    /** Where the badge of an image with box `rect` goes: {show, x, y, clipTop}. */
    place(target, rect, { width, height }) {
      if (!rect) return { show: false, x: 0, y: 0, clipTop: 0 };
      // The badge sits in the top-left corner of the part of the image that is on screen.
      const x = Math.max(rect.left, 0) + 6;
      let y = Math.max(rect.top, 0) + 6;
      let clipTop = 0;
      // Under a sticky header the badge moves down to the part of the image below it.
      const layer = x < width && y < height ? this.coveringLayer(target.el, x + 2, y + 2) : null;
      if (layer) {
        clipTop = layer.getBoundingClientRect().bottom;
        y = clipTop + 6;
      }
      let show = x < rect.right - 16 && y < rect.bottom - 16 && x < width && y < height;
      if (show && layer) show = !this.coveringLayer(target.el, x + 2, y + 2);
      return { show, x, y, clipTop };
    }

    write(target, rect, { show, x, y, clipTop }, { width, height }) {
      target.badge.hidden = !show;
      if (show) target.badge.style.transform = `translate(${Math.round(x)}px, ${Math.round(y)}px)`;
      if (!target.veil) return;
      target.veil.hidden = !rect;
      if (!rect) return;
      const left = Math.max(rect.left, 0);
      const top = Math.max(rect.top, clipTop, 0);
      target.veil.style.transform = `translate(${Math.round(left)}px, ${Math.round(top)}px)`;
      target.veil.style.width = `${Math.max(0, Math.min(rect.right, width) - left)}px`;
      target.veil.style.height = `${Math.max(0, Math.min(rect.bottom, height) - top)}px`;
    }

    isFixedLayer(element) {
      if (!this.fixedLayer.has(element)) {
        const position = getComputedStyle(element).position;
        this.fixedLayer.set(element, position === "fixed" || position === "sticky");
      }
      return this.fixedLayer.get(element);
    }

    /** The fixed or sticky layer (a site header, a banner) over the point (x, y) of `element`, or null. */
    coveringLayer(element, x, y) {
      const hit = document.elementsFromPoint(x, y).find((node) => node !== this.overlay.host);
      if (!hit || hit === element || element.contains(hit) || hit.contains(element)) return null;
      for (let node = hit; node && node !== document.body; node = node.parentElement) {
        if (node.contains(element)) return null;
        if (this.isFixedLayer(node)) return node;
      }
      return null;
    }
  }

  RC.Layout = Layout;
})();
