// The content script's parts, in the order the worker injects them (background/sites.js): each classic script
// defines its part on globalThis.__realcheck and main.js puts them together.
//   shared/messages.js  the message types that every part of the extension shares
//   overlay.js          badges and blur veils in one shadow root, without touching the page's layout
//   finder.js           which elements show a photograph worth checking, and when
//   results.js          what the page asked the worker about each image URL, and what it answered
//   badges.js           the images that show a badge, each with its badge, veil and visibility
//   layout.js           where each badge and veil goes on screen, once per frame
//   manual.js           right-click checks: the image the user clicked, or a panel when it cannot be badged
//   connection.js       the page's one port to the worker, reconnected when the worker restarts
//   main.js             puts the parts together
export const CONTENT_FILES = [
  "shared/messages.js",
  "content/overlay.js",
  "content/finder.js",
  "content/results.js",
  "content/badges.js",
  "content/layout.js",
  "content/manual.js",
  "content/connection.js",
  "content/main.js",
];
