// Digits from the embedded MNIST sample written as PNG files: an image folder for the tests, with known pixels.
import * as fs from "fs";
import * as path from "path";
import { PNG } from "pngjs";
import { readEmbeddedMnist } from "../src/datasets";

export const PIXELS = 28 * 28;
export const digits = readEmbeddedMnist();

/** A PNG file of `channels` 8-bit values per pixel (1: grayscale PNG, 3: RGB PNG). */
export function writePng(file: string, width: number, height: number, values: ArrayLike<number>, channels: 1 | 3): void {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < 3; c++) png.data[4 * i + c] = values[channels === 1 ? i : 3 * i + c];
    png.data[4 * i + 3] = 255;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, PNG.sync.write(png, { colorType: channels === 1 ? 0 : 2 }));
}

/** The 0..255 bytes of embedded digit i. */
export const digitBytes = (i: number) => Uint8Array.from(digits.images.subarray(i * PIXELS, (i + 1) * PIXELS), (v) => Math.round(v * 255));

/** The first `perClass` digits of each class, as PNG files in <dir>/<class>/<index>.png; returns their indices. */
export function writeDigitFolder(dir: string, perClass: number): number[] {
  const chosen: number[] = [];
  for (let digit = 0; digit < 10; digit++) {
    const first = digits.labels.indexOf(digit);
    for (let k = 0; k < perClass; k++) {
      writePng(path.join(dir, String(digit), `${first + k}.png`), 28, 28, digitBytes(first + k), 1);
      chosen.push(first + k);
    }
  }
  return chosen;
}
