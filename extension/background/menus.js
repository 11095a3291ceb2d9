// The context menu: "Check image with RealCheck" on images.
import { ext } from "../shared/browser.js";

export const CHECK_IMAGE_MENU = "realcheck-check-image";

/** (Re)create the menu; menus persist in Chrome, so stale ones go first. */
export async function createMenus() {
  await ext.contextMenus.removeAll();
  ext.contextMenus.create({
    id: CHECK_IMAGE_MENU,
    title: "Check image with RealCheck",
    contexts: ["image"],
  });
}
