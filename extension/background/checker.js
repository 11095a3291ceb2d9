// From an image URL to a verdict: the cache by URL, the download, the cache by bytes (SHA-256), then the
// request queue. Every step is shared: the same URL asked for by several tabs is downloaded once, and the
// same bytes under several URLs are sent to the server once.
import { ApiError } from "./api.js";
import { fetchImage, ImageError, sha256Hex } from "./images.js";
import { ServerLimits } from "./limits.js";
import { RequestQueue } from "./queue.js";

const MAX_DOWNLOADS = 6;

class Limiter {
  constructor(limit) {
    this.limit = limit;
    this.active = 0;
    this.waiting = [];
  }

  async run(task) {
    if (this.active >= this.limit) await new Promise((resolve) => this.waiting.push(resolve));
    this.active += 1;
    try {
      return await task();
    } finally {
      this.active -= 1;
      this.waiting.shift()?.();
    }
  }
}

/** The rules a model may decide an image by (the server's `image_rule`). */
const IMAGE_RULES = ["main", "small_image", "compressed_image"];

/** The result a badge shows for a server prediction. */
export function resultFromPrediction(answer, prediction) {
  return {
    state: "done",
    verdict: prediction.verdict,
    score: prediction.score,
    // The three ranges every face shows beside a score (real below, unsure between, AI above).
    ranges: rangesOf(prediction, answer.decision),
    // Whose ranges these are: the model's main rule, or its own rule for small images or heavily compressed
    // JPEGs (their scores sit elsewhere).
    imageRule: IMAGE_RULES.includes(prediction.image_rule) ? prediction.image_rule : "main",
    sha256: prediction.sha256,
    model: { name: answer.model?.name ?? "unknown", version: answer.model?.version ?? "unknown" },
    // How good the model was measured to be, in the server's words (from the artifact's metadata).
    accuracy: typeof answer.decision?.accuracy_statement === "string" ? answer.decision.accuracy_statement.slice(0, 400) : null,
    // What decided (`provenance` when the file itself declares AI, else `model`), and the model's own verdict.
    basis: prediction.basis ?? "model",
    modelVerdict: prediction.model_verdict ?? prediction.verdict,
    provenance: provenanceFromPrediction(prediction.provenance),
  };
}

/** {realBelow, aiAbove} from a prediction (or an older server's threshold and band), or null. */
function rangesOf(prediction, decision) {
  const number = (value) => (typeof value === "number" && Number.isFinite(value) ? value : null);
  const realBelow = number(prediction.real_below) ?? number(decision?.real_below);
  const aiAbove = number(prediction.ai_above) ?? number(decision?.ai_above);
  if (realBelow !== null && aiAbove !== null) return { realBelow, aiAbove };
  const [low, high] = Array.isArray(decision?.uncertainty_band) ? decision.uncertainty_band.map(number) : [];
  const threshold = number(prediction.threshold) ?? number(decision?.threshold);
  if (low !== null && high !== null && low < high) return { realBelow: low, aiAbove: high };
  return threshold === null ? null : { realBelow: threshold, aiAbove: threshold };
}

const MAX_EVIDENCE = 8;

/** The part of the server's provenance object a badge shows (kept small: results are cached in storage). */
export function provenanceFromPrediction(provenance) {
  if (!provenance || typeof provenance !== "object") return null;
  const text = (value) => (typeof value === "string" ? value.slice(0, 200) : null);
  const c2pa = provenance.c2pa;
  return {
    summary: text(provenance.summary) ?? "",
    explanation: typeof provenance.explanation === "string" ? provenance.explanation.slice(0, 400) : "",
    declaresAi: provenance.declares_ai === true,
    signedCapture: provenance.signed_capture === true,
    evidence: (Array.isArray(provenance.evidence) ? provenance.evidence : []).slice(0, MAX_EVIDENCE).map((item) => ({
      kind: text(item?.kind),
      says: text(item?.says),
      trust: text(item?.trust),
      source: text(item?.source),
      detail: text(item?.detail),
    })),
    c2pa: c2pa ? { state: text(c2pa.state), signer: text(c2pa.signer), issuer: text(c2pa.issuer) } : null,
  };
}

function failure(error) {
  if (error instanceof ImageError) {
    return { state: error.skip ? "skipped" : "failed", code: error.code, message: error.message };
  }
  if (error instanceof ApiError) {
    const message =
      error.status === 401
        ? "the server refused the API key: set it in RealCheck's options"
        : `the server could not check this image: ${error.message}`;
    return { state: "failed", code: error.code, message };
  }
  return { state: "failed", code: error?.code ?? "error", message: String(error?.message ?? error) };
}

export class Checker {
  /**
   * `client` is a ServerClient; `cache` a ResultCache; `hasAccess(url)` says whether the extension may read
   * an origin; `onModelChanged()` runs when the server's model changed (cached verdicts were dropped);
   * `onServerState(down)` hears the server stop answering and answer again;
   * `limits` (a ServerLimits) are the server's upload limits.
   */
  constructor({
    client,
    cache,
    hasAccess = async () => true,
    onModelChanged = () => {},
    onServerState = () => {},
    limits = new ServerLimits(),
    queueOptions = {},
  }) {
    Object.assign(this, { onServerState, cache, limits, hasAccess, onModelChanged, queueOptions });
    this.downloads = new Limiter(MAX_DOWNLOADS);
    this.inFlight = new Map();
    this.listeners = new Map(); // sha256 -> Set of onUpdate callbacks, for "waiting for the server" news
    this.setClient(client);
  }

  /** Use another server (or API key): a fresh queue without the old server's backoff. */
  setClient(client) {
    this.queue?.close();
    this.inFlight = new Map();
    this.client = client;
    this.queue = new RequestQueue((blobs) => client.predict(blobs), this.queueOptions, {
      limits: this.limits,
      onServerState: (down) => this.onServerState(down),
      onWaiting: (keys, delayMs, error) => {
        const news = {
          state: "unavailable",
          code: error.code,
          retryInMs: Math.round(delayMs),
          message: `RealCheck server unavailable (${error.message}); retrying`,
        };
        for (const key of keys) for (const listener of this.listeners.get(key) ?? []) listener(news);
      },
    });
  }

  /** Retry at once instead of waiting out the backoff. */
  retryNow() {
    this.queue.resetBackoff();
  }

  get serverUnavailable() {
    return this.queue.unavailable;
  }

  /**
   * The verdict for the image at `url`: a result object whose `state` is "done", "failed" or "skipped".
   * `manual` (the user asked) is checked apart from automatic checks; `onUpdate(result)` hears "unavailable"
   * while waiting.
   */
  check(url, { manual = false, onUpdate = () => {} } = {}) {
    const cached = this.cache.getByUrl(url);
    if (cached) return Promise.resolve({ ...cached, cached: true });
    const key = `${manual ? "manual" : "auto"} ${url}`;
    const flights = this.inFlight;
    let flight = flights.get(key);
    if (!flight) {
      const created = { updates: new Set(), promise: null };
      created.promise = this.run(url, manual, (news) => created.updates.forEach((listener) => listener(news)))
        .catch(failure)
        .finally(() => {
          if (flights.get(key) === created) flights.delete(key);
        });
      flights.set(key, created);
      flight = created;
    }
    flight.updates.add(onUpdate);
    return flight.promise;
  }

  async run(url, manual, onUpdate) {
    let image;
    try {
      const maxBytes = this.limits.maxImageBytes;
      // A right-click does not lift the size gate: under 100 px a side there is too little to judge.
      image = await this.downloads.run(() => fetchImage(url, { maxBytes }));
    } catch (error) {
      if (error instanceof ImageError && error.code === "fetch_blocked" && !(await this.hasAccess(url))) {
        throw new ImageError(
          "no_access",
          `RealCheck may not read images from ${new URL(url).hostname}: allow it from the toolbar button`,
        );
      }
      throw error;
    }
    const hash = await sha256Hex(image.bytes);
    const known = this.cache.getByHash(hash);
    if (known) {
      this.cache.linkUrl(url, hash);
      return { ...known, cached: true };
    }
    const listeners = this.listeners.get(hash) ?? new Set();
    listeners.add(onUpdate);
    this.listeners.set(hash, listeners);
    try {
      const blob = new Blob([image.bytes], { type: image.type });
      const { answer, prediction } = await this.queue.submit(hash, blob);
      const result = resultFromPrediction(answer, prediction);
      if (this.cache.observeModel(result.model)) this.onModelChanged(result.model);
      this.cache.put(url, hash, result);
      return { ...result, cached: false };
    } finally {
      listeners.delete(onUpdate);
      if (listeners.size === 0) this.listeners.delete(hash);
    }
  }
}
