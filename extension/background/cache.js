// Results by image: URL -> SHA-256 of its bytes -> the server's verdict. Entries expire after `ttlMs`, and all
// of them go when the server's model (name or version) changes, since a new model may judge differently.
// The cache lives in memory and is mirrored to storage.session (memory only, cleared when the browser
// closes), so a service worker restart does not send the same images again and nothing is written to disk.

export const CACHE_DEFAULTS = Object.freeze({ ttlMs: 60 * 60 * 1000, maxEntries: 3000, persistDelayMs: 1000 });
const STORAGE_KEY = "resultCache";

export class ResultCache {
  /** `area` is a storage area (storage.session) or null to keep the cache in memory only. */
  constructor(area = null, options = {}, now = () => Date.now()) {
    this.area = area;
    this.options = { ...CACHE_DEFAULTS, ...options };
    this.now = now;
    this.byHash = new Map();
    this.byUrl = new Map();
    this.modelKey = null;
    this.persistTimer = null;
  }

  /** Restore what an earlier run of the service worker kept. */
  async load() {
    if (!this.area) return this;
    try {
      const stored = (await this.area.get(STORAGE_KEY))[STORAGE_KEY];
      if (stored) {
        this.modelKey = stored.modelKey ?? null;
        this.byHash = new Map(stored.byHash ?? []);
        this.byUrl = new Map(stored.byUrl ?? []);
        this.prune();
      }
    } catch {
      // An unreadable mirror only costs re-checks.
    }
    return this;
  }

  fresh(entry) {
    return entry !== undefined && this.now() - entry.at < this.options.ttlMs;
  }

  /** The result for an image URL, or undefined (unknown, expired or from another model). */
  getByUrl(url) {
    const link = this.byUrl.get(url);
    if (!this.fresh(link)) return undefined;
    return this.getByHash(link.hash);
  }

  /** The result for image bytes with this SHA-256, or undefined. */
  getByHash(hash) {
    const entry = this.byHash.get(hash);
    if (!this.fresh(entry)) return undefined;
    // Least recently used goes first when full: re-inserting moves an entry to the end.
    this.byHash.delete(hash);
    this.byHash.set(hash, entry);
    return entry.result;
  }

  /** Remember that `url` holds the bytes `hash` (a URL seen again needs no download). */
  linkUrl(url, hash) {
    this.byUrl.delete(url);
    this.byUrl.set(url, { hash, at: this.now() });
    this.trim();
    this.persistSoon();
  }

  /** Store a result (it names its model) for `hash`, reached through `url`. */
  put(url, hash, result) {
    this.observeModel(result.model);
    this.byHash.delete(hash);
    this.byHash.set(hash, { result, at: this.now() });
    if (url) this.linkUrl(url, hash);
    this.trim();
    this.persistSoon();
  }

  /** Note the server's current model; returns true (and empties the cache) when it changed. */
  observeModel(model) {
    const key = model ? `${model.name}@${model.version}` : null;
    if (!key || key === this.modelKey) return false;
    const changed = this.modelKey !== null;
    this.modelKey = key;
    if (changed) this.clear();
    this.persistSoon();
    return changed;
  }

  clear() {
    this.byHash.clear();
    this.byUrl.clear();
    this.persistSoon();
  }

  get size() {
    return this.byHash.size;
  }

  prune() {
    for (const [key, entry] of this.byHash) if (!this.fresh(entry)) this.byHash.delete(key);
    for (const [key, entry] of this.byUrl) if (!this.fresh(entry)) this.byUrl.delete(key);
  }

  trim() {
    for (const map of [this.byHash, this.byUrl]) {
      while (map.size > this.options.maxEntries) map.delete(map.keys().next().value);
    }
  }

  persistSoon() {
    if (!this.area || this.persistTimer !== null) return;
    this.persistTimer = setTimeout(() => {
      this.persistTimer = null;
      this.prune();
      this.area
        .set({
          [STORAGE_KEY]: { modelKey: this.modelKey, byHash: [...this.byHash], byUrl: [...this.byUrl] },
        })
        .catch(() => {});
    }, this.options.persistDelayMs);
  }
}
