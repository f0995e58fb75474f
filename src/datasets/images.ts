import * as jpeg from "jpeg-js";
import { PNG } from "pngjs";

// pngjs and jpeg-js: well-kept, pure-JavaScript decoders. No native binary and no download at install time (sharp
// needs a prebuilt libvips binary), so they install wherever npm does, and run in the browser too.

/** The largest image (width × height) decoded: a bigger one is refused before its pixels are allocated. */
export const MAX_IMAGE_PIXELS = 4096 * 4096;

/** A decoded image: 8-bit RGBA, row-major. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** A float image with pixels in [0,1]: row-major, channels last. */
export interface FloatImage {
  width: number;
  height: number;
  channels: number;
  data: Float32Array;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const startsWith = (bytes: Uint8Array, prefix: number[]) => prefix.every((b, i) => bytes[i] === b);

/**
 * A PNG or JPEG file's pixels as 8-bit RGBA, the format told by its first bytes (not its name). Grayscale images come
 * back with R = G = B; 16-bit PNGs are scaled to 8 bits. Throws naming `file` when it is neither or does not decode.
 */
export function decodeImage(bytes: Uint8Array, file: string): RgbaImage {
  const fail = (why: string) => new Error(`${file}: cannot decode the image (${why})`);
  if (startsWith(bytes, PNG_SIGNATURE)) {
    // IHDR, always first: width and height at bytes 16..23. Checked before pngjs allocates the pixels.
    if (bytes.length >= 24) {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      tooLarge(view.getUint32(16), view.getUint32(20), file);
    }
    let png: PNG;
    try {
      png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (err) {
      throw fail(`PNG: ${(err as Error).message}`);
    }
    return { width: png.width, height: png.height, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
  }
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) {
    try {
      const image = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6, maxMemoryUsageInMB: 1024 });
      return { width: image.width, height: image.height, data: image.data };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (/maxResolutionInMP/.test(message))
        throw new Error(`${file}: the image is larger than ${MAX_IMAGE_PIXELS} pixels (4096×4096); expected a smaller one (${message})`);
      throw fail(`JPEG: ${message}`);
    }
  }
  const head = Buffer.from(bytes.subarray(0, 8)).toString("hex") || "none (empty file)";
  throw fail(`first bytes ${head}; expected a PNG (89504e47…) or a JPEG (ffd8ff…)`);
}

function tooLarge(width: number, height: number, file: string): void {
  if (width * height > MAX_IMAGE_PIXELS) {
    throw new Error(`${file}: the image is ${width}×${height} = ${width * height} pixels; expected at most ${MAX_IMAGE_PIXELS} (4096×4096)`);
  }
}

/**
 * RGBA bytes to `channels` floats in [0,1] (byte/255). One channel: the luma 0.299 R + 0.587 G + 0.114 B (ITU-R
 * BT.601, as PIL's convert("L") and tf.image.rgb_to_grayscale), exactly R where R = G = B. Three: R, G, B. Alpha is
 * dropped, as torchvision's image loader (convert("RGB")) drops it.
 */
export function toChannels(image: RgbaImage, channels: 1 | 3): FloatImage {
  const n = image.width * image.height;
  const data = new Float32Array(n * channels);
  const px = image.data;
  for (let i = 0; i < n; i++) {
    const r = px[4 * i];
    const g = px[4 * i + 1];
    const b = px[4 * i + 2];
    if (channels === 1) {
      data[i] = (299 * r + 587 * g + 114 * b) / 1000 / 255;
    } else {
      data[3 * i] = r / 255;
      data[3 * i + 1] = g / 255;
      data[3 * i + 2] = b / 255;
    }
  }
  return { width: image.width, height: image.height, channels, data };
}

/**
 * Bilinear resize with half-pixel centres and no antialiasing: tf.image.resize's "bilinear" (the default of Keras's
 * image_dataset_from_directory) and PyTorch's interpolate(mode="bilinear", align_corners=False). Output pixel x
 * samples the input at (x + 0.5)·(inW/outW) − 0.5, clamped to the edge.
 */
export function resizeBilinear(image: FloatImage, height: number, width: number): FloatImage {
  if (image.height === height && image.width === width) return image;
  const { channels } = image;
  const out = new Float32Array(height * width * channels);
  const ys = samplePoints(height, image.height);
  const xs = samplePoints(width, image.width);
  const src = image.data;
  const row = image.width * channels;
  for (let y = 0; y < height; y++) {
    const { lo: y0, hi: y1, frac: fy } = ys[y];
    for (let x = 0; x < width; x++) {
      const { lo: x0, hi: x1, frac: fx } = xs[x];
      for (let c = 0; c < channels; c++) {
        const a = src[y0 * row + x0 * channels + c];
        const b = src[y0 * row + x1 * channels + c];
        const d = src[y1 * row + x0 * channels + c];
        const e = src[y1 * row + x1 * channels + c];
        const top = a + (b - a) * fx;
        const bottom = d + (e - d) * fx;
        out[(y * width + x) * channels + c] = top + (bottom - top) * fy;
      }
    }
  }
  return { width, height, channels, data: out };
}

/** For each of `outSize` output positions: the two input positions it lies between and the weight of the second. */
function samplePoints(outSize: number, inSize: number): { lo: number; hi: number; frac: number }[] {
  const scale = inSize / outSize;
  return Array.from({ length: outSize }, (_, i) => {
    const s = Math.min(Math.max((i + 0.5) * scale - 0.5, 0), inSize - 1);
    const lo = Math.floor(s);
    return { lo, hi: Math.min(lo + 1, inSize - 1), frac: s - lo };
  });
}
