// One name for the WebExtension API: Firefox's promise-based `browser`, else Chrome's `chrome`
// (whose MV3 functions also return promises when called without a callback).
export const ext = globalThis.browser ?? globalThis.chrome;
