// The server's upload limits, as its /v1/models answer states them (`limits`), so the extension never sends
// what the server would refuse. They are kept in storage.local with the server they came from, so a worker
// that starts knows them without asking; until a server has said, a stock server's limits stand in.

const STORAGE_KEY = "serverLimits";

/** A stock server's limits (server/config.py): what the extension assumes until its server says. */
export const DEFAULT_LIMITS = Object.freeze({
  max_image_bytes: 25 * 1024 * 1024,
  max_request_bytes: 64 * 1024 * 1024,
  max_images_per_request: 64,
});

/** The known limits of a server's answer (positive integers only), over the defaults. */
export function limitsFrom(answer) {
  const limits = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS)) {
    const value = answer?.[key];
    if (Number.isSafeInteger(value) && value > 0) limits[key] = value;
  }
  return limits;
}

export class ServerLimits {
  /** `area` is a storage area (storage.local), or null to keep them for this run of the worker only. */
  constructor(area = null) {
    this.area = area;
    this.serverUrl = null;
    this.current = { ...DEFAULT_LIMITS };
  }

  /** The server's per-image limit in bytes. */
  get maxImageBytes() {
    return this.current.max_image_bytes;
  }

  /**
   * Follow the server of `client` (a ServerClient): its stored limits at once, else the defaults until it
   * answers (asked in the background). Resolves once the stored ones are read.
   */
  async use(client) {
    this.serverUrl = client.serverUrl;
    let stored = null;
    try {
      stored = (await this.area?.get(STORAGE_KEY))?.[STORAGE_KEY] ?? null;
    } catch {
      // Unreadable: the server is asked below.
    }
    if (this.serverUrl !== client.serverUrl) return; // another server was chosen meanwhile
    if (stored?.serverUrl === client.serverUrl) {
      this.current = limitsFrom(stored.limits);
      return;
    }
    this.current = { ...DEFAULT_LIMITS };
    this.refresh(client);
  }

  /** Ask the server of `client` for its limits (again); an unreachable server leaves them as they are. */
  async refresh(client) {
    let answer;
    try {
      answer = await client.limits();
    } catch {
      return;
    }
    // An older server states none; an answer from a server no longer in use counts for nothing.
    if (!answer || client.serverUrl !== this.serverUrl) return;
    this.current = limitsFrom(answer);
    try {
      await this.area?.set({ [STORAGE_KEY]: { serverUrl: client.serverUrl, limits: this.current } });
    } catch {
      // Not kept: the next worker start asks again.
    }
  }
}
