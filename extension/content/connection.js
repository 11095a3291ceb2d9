// RealCheck connection: the page's one port to the service worker. The worker may stop when idle or restart:
// the port then reconnects and the page asks again for what is still open; while images wait, a keepalive
// message keeps the worker awake. When the extension itself is gone (removed or updated), the page's copy of
// the content script is an orphan and stops.
(() => {
  const RC = (globalThis.__realcheck ??= {});
  if (RC.WorkerConnection) return;

  const ext = globalThis.browser ?? globalThis.chrome;
  const MSG = RC.MSG;
  const KEEPALIVE_MS = 20_000;
  const RECONNECT_MS = 500;

  class WorkerConnection {
    /**
     * `handlers` maps each workerToPage type to its handler; `onReconnected()` runs after a reconnection;
     * `isWaiting()` says whether images wait for answers; `onOrphaned()` runs once the extension is gone.
     */
    constructor({ handlers, onReconnected, isWaiting, onOrphaned }) {
      Object.assign(this, { handlers, onReconnected, isWaiting, onOrphaned });
      this.port = null;
      this.keepalive = null;
    }

    get connected() {
      return this.port !== null;
    }

    /** Connect (`fresh`: this is a new page; the worker forgets what the tab's previous page could not read). */
    connect(fresh = false) {
      try {
        this.port = ext.runtime.connect({ name: RC.PAGE_PORT });
      } catch {
        this.onOrphaned();
        return;
      }
      this.port.onMessage.addListener((message) => {
        if (Object.hasOwn(this.handlers, message?.type)) this.handlers[message.type](message);
      });
      this.port.onDisconnect.addListener(() => this.disconnected());
      this.post({ type: MSG.pageToWorker.hello, fresh });
      // A message resets the worker's idle timer, so retries keep going while images wait for the server.
      this.keepalive ??= setInterval(() => {
        if (this.isWaiting()) this.post({ type: MSG.pageToWorker.keepalive });
      }, KEEPALIVE_MS);
    }

    disconnected() {
      this.port = null;
      if (!ext.runtime?.id) {
        this.onOrphaned();
        return;
      }
      // The worker was stopped (idle) or restarted.
      setTimeout(() => {
        this.connect();
        this.onReconnected();
      }, RECONNECT_MS);
    }

    post(message) {
      try {
        this.port?.postMessage(message);
      } catch {
        this.port = null;
      }
    }

    stop() {
      clearInterval(this.keepalive);
    }
  }

  RC.WorkerConnection = WorkerConnection;
})();
