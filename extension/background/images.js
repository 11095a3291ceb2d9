// Image bytes: download (by the extension, never by the server), recognise the format from the bytes, read
// the dimensions from the header without decoding pixels, and hash with SHA-256.
import { DEFAULT_LIMITS } from "./limits.js";

const FETCH_TIMEOUT_MS = 20_000;
// The extension's own rule, not the server's (which scores any size): smaller images are icons, avatars and
// thumbnails, not photographs worth a badge. The content script's finder applies it too (sent in its config).
export const MIN_IMAGE_SIDE = 100;
const MIB = 1024 * 1024;

export class ImageError extends Error {
  /** Why an image was not checked; `skip` marks images that simply are not candidates (tiny, vector). */
  constructor(code, message, { skip = false } = {}) {
    super(message);
    this.name = "ImageError";
    this.code = code;
    this.skip = skip;
  }
}

// The formats the server decodes (model/data/imaging.py SUPPORTED_FORMATS); anything else is not sent.
/** The format of image bytes from their signature: "jpeg", "png", "gif", "webp", "bmp", "tiff", "svg", or null. */
export function sniffFormat(bytes) {
  const b = bytes;
  const ascii = (start, text) => [...text].every((c, i) => b[start + i] === c.charCodeAt(0));
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpeg";
  if (b.length >= 8 && b[0] === 0x89 && ascii(1, "PNG")) return "png";
  if (ascii(0, "GIF8")) return "gif";
  if (ascii(0, "RIFF") && ascii(8, "WEBP")) return "webp";
  if (ascii(0, "BM") && b.length > 26) return "bmp";
  if (ascii(0, "II*\0") || ascii(0, "MM\0*")) return "tiff";
  const head = new TextDecoder().decode(b.subarray(0, 512)).trimStart().toLowerCase();
  if (head.startsWith("<svg") || (head.startsWith("<?xml") && head.includes("<svg"))) return "svg";
  return null;
}

/** Width and height from the header of a JPEG, PNG, GIF, WebP or BMP; null when unknown. */
export function imageSize(bytes, format) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    if (format === "png") return { width: view.getUint32(16), height: view.getUint32(20) };
    if (format === "gif") return { width: view.getUint16(6, true), height: view.getUint16(8, true) };
    if (format === "bmp") {
      return { width: Math.abs(view.getInt32(18, true)), height: Math.abs(view.getInt32(22, true)) };
    }
    if (format === "webp") {
      const chunk = String.fromCharCode(...bytes.subarray(12, 16));
      if (chunk === "VP8 ") {
        return { width: view.getUint16(26, true) & 0x3fff, height: view.getUint16(28, true) & 0x3fff };
      }
      if (chunk === "VP8L") {
        const bits = view.getUint32(21, true);
        return { width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 };
      }
      if (chunk === "VP8X") {
        const w = bytes[24] | (bytes[25] << 8) | (bytes[26] << 16);
        const h = bytes[27] | (bytes[28] << 8) | (bytes[29] << 16);
        return { width: w + 1, height: h + 1 };
      }
    }
    if (format === "jpeg") {
      let offset = 2;
      while (offset + 9 < bytes.length) {
        if (bytes[offset] !== 0xff) return null;
        const marker = bytes[offset + 1];
        if (marker === 0xff) {
          offset += 1;
          continue;
        }
        const length = view.getUint16(offset + 2);
        // Start-of-frame markers (baseline, progressive, ...) carry the size; DHT, JPG and DAC do not.
        if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
          return { height: view.getUint16(offset + 5), width: view.getUint16(offset + 7) };
        }
        offset += 2 + length;
      }
    }
  } catch {
    // A header shorter than it claims: the server will say what is wrong with it.
  }
  return null;
}

/** Hex SHA-256 of the bytes (the server's cache key too, so both sides name an image the same way). */
export async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function tooLarge(maxBytes) {
  return new ImageError("too_large", `the image is over the ${+(maxBytes / MIB).toFixed(1)} MB the server accepts`);
}

/**
 * Download an image and check it is worth sending: returns {bytes, format, size, type}. `maxBytes` is the
 * server's per-image limit (background/limits.js). Throws ImageError: `too_large` over it; `skip` for SVG,
 * unsupported formats and (unless `anySize`) images with a side under `minSize`.
 */
export async function fetchImage(
  url,
  { maxBytes = DEFAULT_LIMITS.max_image_bytes, minSize = MIN_IMAGE_SIDE, anySize = false, fetchImpl = null } = {},
) {
  const scheme = url.slice(0, url.indexOf(":") + 1).toLowerCase();
  if (!["http:", "https:", "data:"].includes(scheme)) {
    throw new ImageError("unsupported_url", `cannot read ${scheme} images (only http, https and data URLs)`);
  }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
  let response;
  let bytes;
  try {
    // No cookies: the image host learns nothing about the user from the extension's copy of the request.
    response = await (fetchImpl ?? globalThis.fetch)(url, {
      credentials: "omit",
      cache: "force-cache",
      signal: controller.signal,
    });
    if (!response.ok) {
      throw new ImageError("fetch_failed", `the image could not be downloaded (HTTP ${response.status})`);
    }
    const declared = Number(response.headers.get("Content-Length"));
    if (declared > maxBytes) throw tooLarge(maxBytes);
    bytes = new Uint8Array(await response.arrayBuffer());
  } catch (error) {
    if (error instanceof ImageError) throw error;
    const timedOut = error?.name === "AbortError";
    throw new ImageError(
      timedOut ? "fetch_timeout" : "fetch_blocked",
      timedOut ? "the image took too long to download" : "the image could not be downloaded",
    );
  } finally {
    clearTimeout(timer);
  }
  if (bytes.length > maxBytes) throw tooLarge(maxBytes);
  const type = (response.headers.get("Content-Type") ?? "").split(";")[0].trim().toLowerCase();
  const format = sniffFormat(bytes);
  if (format === "svg" || type === "image/svg+xml") {
    throw new ImageError("svg", "vector graphics (SVG) are not photographs", { skip: true });
  }
  if (!format) {
    throw new ImageError("unsupported_format", "not an image format RealCheck reads (JPEG, PNG, WebP, GIF, BMP, TIFF)", {
      skip: !anySize,
    });
  }
  const size = imageSize(bytes, format);
  if (!anySize && size && (size.width < minSize || size.height < minSize)) {
    throw new ImageError("tiny", `the image is only ${size.width}x${size.height} pixels`, { skip: true });
  }
  return { bytes, format, size, type: type.startsWith("image/") ? type : `image/${format}` };
}
