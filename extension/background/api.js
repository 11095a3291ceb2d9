// The RealCheck server's HTTP API (see /openapi.json on the server): multipart uploads to /v1/predict,
// model metadata and upload limits from /v1/models, readiness from /readyz. Errors are the server's JSON
// {"error": {"code", "message"}} or, when no answer came, status 0 with code "unreachable" or "timeout".

const DEFAULT_TIMEOUT_MS = 30_000;
// Statuses worth retrying later: the server is starting, overloaded, rate limiting or briefly broken.
const RETRYABLE_STATUSES = new Set([0, 408, 429, 500, 502, 503, 504]);

export class ApiError extends Error {
  /** An API failure; `retryAfterMs` comes from the Retry-After header when the server sent one. */
  constructor(status, code, message, retryAfterMs = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }

  /** True when the same request may succeed later (server down, loading, overloaded, rate limited). */
  get retryable() {
    return RETRYABLE_STATUSES.has(this.status);
  }
}

/**
 * The error of one image in a multi-image answer ({"error": {"code", "message"}} in its slot), or null when
 * the image was scored. It reads like the HTTP 400 the same image gets when sent alone, so an undecodable
 * image fails the same way whether it travelled alone or with others.
 */
export function predictionError(prediction) {
  if (!prediction || typeof prediction !== "object") {
    return new ApiError(200, "bad_response", "the server's answer holds no result for this image");
  }
  if (!prediction.error) return null;
  const { code = "invalid_image", message = "the server could not read this image" } = prediction.error;
  return new ApiError(400, code, message);
}

function retryAfterMs(response) {
  const header = response.headers.get("Retry-After");
  if (!header) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

export class ServerClient {
  /** A client for one server; `apiKey` goes in the X-API-Key header when set. */
  constructor({ serverUrl, apiKey = "", timeoutMs = DEFAULT_TIMEOUT_MS, fetchImpl = null }) {
    this.serverUrl = serverUrl.replace(/\/+$/, "");
    this.apiKey = apiKey;
    this.timeoutMs = timeoutMs;
    this.fetch = fetchImpl ?? ((...args) => globalThis.fetch(...args));
  }

  async request(path, { method = "GET", body = undefined, contentType = null } = {}) {
    const headers = { Accept: "application/json" };
    if (contentType) headers["Content-Type"] = contentType;
    if (this.apiKey) headers["X-API-Key"] = this.apiKey;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    let response;
    try {
      response = await this.fetch(this.serverUrl + path, {
        method,
        body,
        headers,
        signal: controller.signal,
        credentials: "omit",
        cache: "no-store",
      });
    } catch (error) {
      const timedOut = error?.name === "AbortError";
      throw new ApiError(
        0,
        timedOut ? "timeout" : "unreachable",
        timedOut
          ? `the RealCheck server at ${this.serverUrl} did not answer within ${this.timeoutMs / 1000} s`
          : `cannot reach the RealCheck server at ${this.serverUrl}`,
      );
    } finally {
      clearTimeout(timer);
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch {
      // A proxy's HTML page or waitress's plain-text 413: keep the status, describe it below.
    }
    if (!response.ok) {
      const error = payload?.error ?? {};
      throw new ApiError(
        response.status,
        error.code ?? `http_${response.status}`,
        error.message ?? payload?.message ?? `the server answered HTTP ${response.status}`,
        retryAfterMs(response),
      );
    }
    if (payload === null) {
      throw new ApiError(response.status, "bad_response", "the server's answer was not JSON");
    }
    return payload;
  }

  /**
   * Score images (Blobs) in one multipart request; returns the server's JSON (`predictions` in order). In a
   * request of several images, a slot may hold that image's error instead of a score (see predictionError).
   */
  async predict(blobs) {
    const form = new FormData();
    blobs.forEach((blob, index) => form.append("image", blob, `image-${index}`));
    const answer = await this.request("/v1/predict", { method: "POST", body: form });
    if (!Array.isArray(answer.predictions) || answer.predictions.length !== blobs.length) {
      throw new ApiError(200, "bad_response", "the server answered with the wrong number of predictions");
    }
    return answer;
  }

  /** Send one "this verdict is wrong" report (see background/feedback.js); returns the stored report. */
  async feedback(report) {
    const body = JSON.stringify(report);
    return (await this.request("/v1/feedback", { method: "POST", body, contentType: "application/json" })).report;
  }

  /** The served model's metadata (name, version, threshold, runtime, ...). */
  async model() {
    const answer = await this.request("/v1/models");
    const model = answer.models?.[0];
    if (!model) throw new ApiError(200, "bad_response", "the server lists no model");
    return model;
  }

  /** The server's upload limits ({max_image_bytes, max_request_bytes, max_images_per_request}); null if unstated. */
  async limits() {
    return (await this.request("/v1/models")).limits ?? null;
  }

  /** The readiness document: {status, model: {name, version}, runtime}; 503 while loading. */
  async ready() {
    return this.request("/readyz");
  }
}
