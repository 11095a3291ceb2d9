// RealCheck right-click checks: find the image the user right-clicked (the context menu names only its URL)
// and badge it; an image not in this document (gone, a canvas copy, a closed shadow root) or too small to
// carry a badge gets its answer as a panel ("toast") instead.
(() => {
  const RC = (globalThis.__realcheck ??= {});
  if (RC.ManualChecks) return;

  const MIN_BADGE_SIDE = 40;

  function imageUrlsOf(element) {
    if (element instanceof HTMLImageElement) return [element.currentSrc, element.src];
    const background = RC.backgroundUrl(getComputedStyle(element).backgroundImage);
    return background ? [background] : [];
  }

  class ManualChecks {
    /** `badges` and `results` are the page's Badges and Results. */
    constructor({ overlay, badges, results }) {
      this.overlay = overlay;
      this.badges = badges;
      this.results = results;
      this.toasts = new Map(); // url -> panel, for verdicts whose image could not be found
      this.lastContextTarget = null;
      this.onContextMenu = (event) => {
        this.lastContextTarget = event.composedPath?.()[0] ?? event.target;
      };
    }

    /** Remember what the user right-clicks, to find the image a menu click names. */
    start() {
      document.addEventListener("contextmenu", this.onContextMenu, true);
    }

    stop() {
      document.removeEventListener("contextmenu", this.onContextMenu, true);
    }

    /** The user asked about the image at `url`. */
    check(url) {
      const element = this.findElement(url);
      const rect = element?.getBoundingClientRect();
      // A badge needs room on its image; on an icon-sized one the answer comes as a panel.
      if (element && rect.width >= MIN_BADGE_SIDE && rect.height >= MIN_BADGE_SIDE) {
        const target = this.badges.show(element, element instanceof HTMLImageElement ? "img" : "background", url, true);
        this.overlay.announce(`RealCheck is checking ${RC.subjectOf(target)}.`);
        return;
      }
      let toast = this.toasts.get(url);
      if (!toast) {
        toast = this.overlay.createToast();
        this.toasts.set(url, toast);
      }
      toast.hidden = false;
      this.results.request(url, true);
      this.renderToast(url);
    }

    /** An answer for `url` arrived: its panel shows it, and a final answer is read out. */
    answered(url, manual, result) {
      if (this.toasts.has(url)) this.renderToast(url);
      if (manual && RC.isFinal(result)) this.overlay.announce(RC.describe(result, "the image").spoken);
    }

    renderToast(url) {
      const result = this.results.resultFor(url, true) ?? { state: "pending" };
      this.overlay.render(this.toasts.get(url), result, { expanded: true, subject: "the image" });
    }

    /** The element right-clicked (or one above it) showing `url`, else an image with that URL, on screen first. */
    findElement(url) {
      for (let node = this.lastContextTarget; node?.nodeType === Node.ELEMENT_NODE; node = node.parentElement) {
        if (imageUrlsOf(node).includes(url)) return node;
      }
      const images = [...document.images].filter((image) => image.currentSrc === url || image.src === url);
      const onScreen = images.find((image) => {
        const rect = image.getBoundingClientRect();
        return rect.width > 0 && rect.bottom > 0 && rect.top < innerHeight;
      });
      return onScreen ?? images[0] ?? null;
    }
  }

  RC.ManualChecks = ManualChecks;
})();
