// "Wrong? It's real" / "Wrong? It's AI": the user's own label for an image. It is sent to the RealCheck server
// (POST /v1/feedback) and kept in this browser, where it stands in for the model's verdict on that image.
//
// What is sent: the image's SHA-256, the label, the model name, version, score and verdict the badge showed,
// and "extension" as the client; the image bytes only when the user ticked the box on that badge. Never the
// address of the page or of the image, and no cookies (the download for a shared image omits them too).
import { ext } from "../shared/browser.js";
import { fetchImage, sha256Hex } from "./images.js";

export const USER_LABELS_KEY = "userLabels";
export const LABELS = Object.freeze(["ai", "real"]);
const MAX_LABELS = 2000; // the oldest go first: a bounded record of this browser's own reports
const CLIENT = "extension";

function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/** The user's labels by image SHA-256, in storage.local (so they survive restarts; never sent anywhere). */
export class UserLabels {
  constructor(area = ext.storage.local, { maxLabels = MAX_LABELS } = {}) {
    this.area = area;
    this.maxLabels = maxLabels;
  }

  async all() {
    return (await this.area.get(USER_LABELS_KEY))[USER_LABELS_KEY] ?? {};
  }

  /** The user's label for this image ("ai" or "real"), or null. */
  async labelFor(sha256) {
    return (await this.all())[sha256]?.label ?? null;
  }

  async set(sha256, label) {
    const labels = await this.all();
    delete labels[sha256];
    labels[sha256] = { label, at: Date.now() };
    const keys = Object.keys(labels);
    for (const key of keys.slice(0, Math.max(0, keys.length - this.maxLabels))) delete labels[key];
    await this.area.set({ [USER_LABELS_KEY]: labels });
  }

  /** `result` with the user's label added (`userLabel`), when they gave one for its image. */
  async decorate(result) {
    if (result?.state !== "done" || !result.sha256) return result;
    const label = await this.labelFor(result.sha256);
    return label ? { ...result, userLabel: label } : result;
  }
}

/** The JSON report for a result the badge showed (no URL in it: see the top of this file). */
export function feedbackReport(result, label, imageBytes = null) {
  const report = {
    sha256: result.sha256,
    label,
    model: { name: result.model?.name ?? "unknown", version: result.model?.version ?? "unknown" },
    score: result.score,
    verdict: result.verdict ?? null,
    client: CLIENT,
  };
  if (imageBytes) report.image_b64 = toBase64(imageBytes);
  return report;
}

/**
 * Report `label` for the image at `url` whose verdict was `result`; `share` downloads the image again (without
 * cookies) and sends its bytes, which must still be the bytes that were checked. Returns the stored report
 * after recording the label in `labels`; `client` is the current ServerClient, `maxBytes` its per-image limit.
 */
export async function reportFeedback({ client, labels, url, result, label, share = false, maxBytes, fetchImpl = null }) {
  if (!LABELS.includes(label)) throw new Error(`unknown label ${label}`);
  if (result?.state !== "done" || !/^[0-9a-f]{64}$/.test(result.sha256 ?? "")) {
    throw new Error("only a checked image can be reported");
  }
  let bytes = null;
  if (share) {
    ({ bytes } = await fetchImage(url, { anySize: true, maxBytes, fetchImpl }));
    if ((await sha256Hex(bytes)) !== result.sha256) {
      throw new Error("the image changed since it was checked; check it again before sharing it");
    }
  }
  const stored = await client.feedback(feedbackReport(result, label, bytes));
  await labels.set(result.sha256, label);
  return stored;
}
