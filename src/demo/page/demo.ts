// The demo page: the exported model through the fwprune runtime (sparse) and through tfjs's wasm backend (dense), a
// drawing pad and test digits to predict, the bytes each side downloads, and a side-by-side benchmark. Tests and
// `fwprune bench --browser` drive it through window.fwpruneDemo.
import { loadSparseModel } from "fwprune/runtime";
import type { BrowserBenchLine, DemoBytes, DemoInfo } from "../types";
import * as tf from "./tfjs";

type Info = DemoInfo & { bytes: DemoBytes };

const SIZE = 28;
const PIXELS = SIZE * SIZE;
/** Samples per timed round at least (a round of batch 1 is this many calls). */
const MIN_ROUND_SAMPLES = 200;

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;
/** A tensor's values read after tf.tidy (which walks a returned typed array entry by entry, a cost the timing counted). */
const valuesOf = (run: () => tf.Tensor): Float32Array => {
  const out = tf.tidy(run);
  const values = out.dataSync() as Float32Array;
  out.dispose();
  return values;
};
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

function maxRelativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, 1e-12);
}

async function fetchBytes(url: string): Promise<ArrayBuffer> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.arrayBuffer();
}

async function start() {
  const info = (await (await fetch("info.json")).json()) as Info;
  const [sparseFile, digitBytes] = await Promise.all([fetchBytes("model/model.fwsparse"), fetchBytes("model/digits.f32")]);
  const digits = new Float32Array(digitBytes);
  const runtime = await loadSparseModel(new Uint8Array(sparseFile));
  tf.setWasmPaths(new URL("tfjs-wasm/", location.href).href);
  if (!(await tf.setBackend("wasm"))) throw new Error("tfjs: the wasm backend did not start");
  const dense = await tf.loadLayersModel("model/model.json");
  const images = (n: number) => digits.subarray(0, n * PIXELS);

  const denseLogits = (x: Float32Array, n: number): Float32Array =>
    valuesOf(() => dense.predict(tf.tensor4d(x, [n, SIZE, SIZE, 1]), { batchSize: Math.max(n, 1) }) as tf.Tensor);

  byId("about").textContent =
    `${info.model}, ${info.checkpoint}, pruned to ${(100 * info.sparsity).toFixed(0)}% by ${info.pruning}: ` +
    `test accuracy ${(100 * info.testAccuracy).toFixed(2)}%. The fwprune runtime computes the predictions below.`;
  showBytes(info);

  function show(x: Float32Array, source: string, truth?: number) {
    const logits = runtime.predict(x, 1);
    const best = logits.indexOf(Math.max(...logits));
    const exps = Array.from(logits, (v) => Math.exp(v - logits[best]));
    const total = exps.reduce((a, b) => a + b, 0);
    const prediction = byId("prediction");
    prediction.textContent = String(best);
    prediction.dataset.digit = String(best);
    prediction.dataset.source = source;
    byId("truth").textContent = truth === undefined ? "(drawn)" : `test digit, labelled ${truth}`;
    byId("scores").textContent = `p = ${(exps[best] / total).toFixed(3)}`;
  }

  const pad = byId<HTMLCanvasElement>("pad");
  setUpPad(pad, (x) => show(x, "drawn"));
  const strip = byId("digits");
  for (let i = 0; i < 24; i++) {
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = SIZE;
    canvas.dataset.index = String(i);
    paint(canvas, images(i + 1).subarray(i * PIXELS));
    canvas.addEventListener("click", () => {
      strip.querySelectorAll("canvas").forEach((c) => c.classList.remove("picked"));
      canvas.classList.add("picked");
      paint(pad, images(i + 1).subarray(i * PIXELS));
      show(digits.slice(i * PIXELS, (i + 1) * PIXELS), `test digit ${i}`, info.digits.labels[i]);
    });
    strip.appendChild(canvas);
  }

  async function bench(opts: { batches?: number[]; rounds?: number; onProgress?: (message: string) => void } = {}): Promise<BrowserBenchLine[]> {
    const batches = opts.batches ?? [1000, 1];
    const rounds = opts.rounds ?? 9;
    const lines: BrowserBenchLine[] = [];
    for (const batch of batches) {
      if (!(Number.isInteger(batch) && batch >= 1 && batch <= info.digits.count))
        throw new Error(`batch ${batch}: expected an integer in 1..${info.digits.count}`);
      const x = images(batch);
      const input = tf.tensor4d(x, [batch, SIZE, SIZE, 1]);
      const calls = Math.ceil(MIN_ROUND_SAMPLES / batch);
      const runDense = () => valuesOf(() => dense.predict(input, { batchSize: batch }) as tf.Tensor);
      const runSparse = () => runtime.predict(x, batch);
      const samplesPerSec = (run: () => unknown) => {
        const t0 = performance.now();
        for (let c = 0; c < calls; c++) run();
        return (calls * batch * 1000) / (performance.now() - t0);
      };
      const error = maxRelativeError(runSparse(), runDense());
      runDense();
      runSparse();
      const denseRates: number[] = [];
      const sparseRates: number[] = [];
      for (let r = 0; r < rounds; r++) {
        opts.onProgress?.(`batch ${batch}: round ${r + 1} of ${rounds}`);
        await tick();
        // Alternate which side goes first, so that neither always runs on a warmer (or busier) machine.
        if (r % 2 === 0) {
          denseRates.push(samplesPerSec(runDense));
          sparseRates.push(samplesPerSec(runSparse));
        } else {
          sparseRates.push(samplesPerSec(runSparse));
          denseRates.push(samplesPerSec(runDense));
        }
      }
      input.dispose();
      const [d, s] = [median(denseRates), median(sparseRates)];
      lines.push({
        backend: "browser wasm",
        model: info.model,
        checkpoint: info.checkpoint,
        pruning: info.pruning,
        sparsity: info.sparsity,
        batch,
        denseSamplesPerSec: round(d, 1),
        sparseSamplesPerSec: round(s, 1),
        speedup: round(s / d, 2),
        flopsSpeedup: info.flopsSpeedup,
        maxRelativeError: Number(error.toExponential(2)),
        layers: runtime.layers.filter((l) => l.weights > 0).map((l) => ({ layer: l.name, path: l.path, weights: l.weights, nonzeros: l.nonzeros })),
        runtimeBytes: info.bytes.runtime,
        modelBytes: info.bytes.model,
        userAgent: navigator.userAgent,
      });
    }
    return lines;
  }

  const button = byId<HTMLButtonElement>("bench");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      showResults(await bench({ onProgress: (m) => (byId("status").textContent = m) }));
      byId("status").textContent = "done";
    } catch (err) {
      byId("status").textContent = `failed: ${(err as Error).message}`;
    } finally {
      button.disabled = false;
    }
  });

  function workerLogits(n: number): Promise<Float32Array> {
    const worker = new Worker(new URL("worker.mjs", location.href), { type: "module" });
    return new Promise<Float32Array>((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<{ logits?: Float32Array; error?: string }>) => {
        worker.terminate();
        if (e.data.logits) resolve(e.data.logits);
        else reject(new Error(`worker: ${e.data.error}`));
      };
      worker.onerror = (e) => (worker.terminate(), reject(new Error(`worker: ${e.message}`)));
      worker.postMessage({ modelUrl: new URL("model/model.fwsparse", location.href).href, images: images(n).slice(), batch: n });
    });
  }

  return {
    info,
    layers: runtime.layers,
    sparseLogits: (n: number) => Array.from(runtime.predict(images(n), n)),
    denseLogits: (n: number) => Array.from(denseLogits(images(n), n)),
    workerLogits: async (n: number) => Array.from(await workerLogits(n)),
    bench,
  };
}

function showBytes(info: Info) {
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  const { runtime, model } = info.bytes;
  const total = { dense: runtime.dense + model.dense, sparse: runtime.sparse + model.sparse };
  byId("bytes").innerHTML =
    "<tr><th></th><th>code (JS + wasm)</th><th>model</th><th>total</th></tr>" +
    `<tr><td>tfjs, wasm backend, layers model</td><td>${kib(runtime.dense)}</td><td>${kib(model.dense)}</td><td>${kib(total.dense)}</td></tr>` +
    `<tr><td>fwprune runtime, model.fwsparse</td><td>${kib(runtime.sparse)}</td><td>${kib(model.sparse)}</td><td>${kib(total.sparse)}</td></tr>` +
    `<tr><td>fwprune / tfjs</td><td>${(runtime.sparse / runtime.dense).toFixed(3)}</td><td>${(model.sparse / model.dense).toFixed(3)}</td><td>${(total.sparse / total.dense).toFixed(3)}</td></tr>`;
}

function showResults(lines: BrowserBenchLine[]) {
  byId("results").innerHTML =
    "<tr><th>batch</th><th>tfjs dense, samples/s</th><th>fwprune sparse, samples/s</th><th>speed-up</th><th>FLOP bound</th><th>max relative error</th></tr>" +
    lines
      .map(
        (l) =>
          `<tr><td>${l.batch}</td><td>${l.denseSamplesPerSec.toFixed(0)}</td><td>${l.sparseSamplesPerSec.toFixed(0)}</td><td>×${l.speedup.toFixed(2)}</td><td>×${l.flopsSpeedup.toFixed(2)}</td><td>${l.maxRelativeError}</td></tr>`,
      )
      .join("");
}

/** Draw a digit (values 0..1, white on black) onto a canvas of any size. */
function paint(canvas: HTMLCanvasElement, x: Float32Array) {
  const small = document.createElement("canvas");
  small.width = small.height = SIZE;
  const ctx = small.getContext("2d") as CanvasRenderingContext2D;
  const image = ctx.createImageData(SIZE, SIZE);
  for (let i = 0; i < PIXELS; i++) {
    const v = Math.round(255 * x[i]);
    image.data.set([v, v, v, 255], 4 * i);
  }
  ctx.putImageData(image, 0, 0);
  const target = canvas.getContext("2d") as CanvasRenderingContext2D;
  target.imageSmoothingEnabled = false;
  target.drawImage(small, 0, 0, canvas.width, canvas.height);
}

/** A pad to draw on; after each stroke, the drawing as MNIST shapes digits: its box scaled to 20 px, centred in 28×28. */
function setUpPad(pad: HTMLCanvasElement, onDigit: (x: Float32Array) => void) {
  const ctx = pad.getContext("2d", { willReadFrequently: true }) as CanvasRenderingContext2D;
  const clear = () => {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, pad.width, pad.height);
  };
  clear();
  let drawing = false;
  const at = (e: PointerEvent) => [e.offsetX * (pad.width / pad.clientWidth), e.offsetY * (pad.height / pad.clientHeight)];
  pad.addEventListener("pointerdown", (e) => {
    drawing = true;
    pad.setPointerCapture(e.pointerId);
    ctx.beginPath();
    ctx.moveTo(...(at(e) as [number, number]));
  });
  pad.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    Object.assign(ctx, { strokeStyle: "#fff", lineWidth: 20, lineCap: "round", lineJoin: "round" });
    ctx.lineTo(...(at(e) as [number, number]));
    ctx.stroke();
  });
  pad.addEventListener("pointerup", () => {
    drawing = false;
    const x = digitFrom(pad);
    if (x) onDigit(x);
  });
  byId("clear").addEventListener("click", clear);
}

function digitFrom(pad: HTMLCanvasElement): Float32Array | undefined {
  const ctx = pad.getContext("2d") as CanvasRenderingContext2D;
  const { data } = ctx.getImageData(0, 0, pad.width, pad.height);
  let [x0, y0, x1, y1] = [pad.width, pad.height, -1, -1];
  for (let y = 0; y < pad.height; y++) {
    for (let x = 0; x < pad.width; x++) {
      if (data[4 * (y * pad.width + x)] > 32) [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
    }
  }
  if (x1 < 0) return undefined;
  const [w, h] = [x1 - x0 + 1, y1 - y0 + 1];
  const scale = 20 / Math.max(w, h);
  const small = document.createElement("canvas");
  small.width = small.height = SIZE;
  const sctx = small.getContext("2d", { willReadFrequently: true }) as CanvasRenderingContext2D;
  sctx.fillStyle = "#000";
  sctx.fillRect(0, 0, SIZE, SIZE);
  sctx.imageSmoothingQuality = "high";
  sctx.drawImage(pad, x0, y0, w, h, (SIZE - w * scale) / 2, (SIZE - h * scale) / 2, w * scale, h * scale);
  const pixels = sctx.getImageData(0, 0, SIZE, SIZE).data;
  return Float32Array.from({ length: PIXELS }, (_, i) => pixels[4 * i] / 255);
}

type Demo = Awaited<ReturnType<typeof start>>;
const ready: Promise<Demo> = start();
ready.catch((err: Error) => {
  byId("about").textContent = `The demo failed to start: ${err.message}`;
  console.error(err);
});
(window as unknown as { fwpruneDemo: Promise<Demo> }).fwpruneDemo = ready;
