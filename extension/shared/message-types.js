// The message types and the page port's name (messages.js: a classic script, so that content scripts
// load the same file; imported here for its effect, it defines them on globalThis.__realcheck).
import "./messages.js";

export const { MSG, PAGE_PORT } = globalThis.__realcheck;
