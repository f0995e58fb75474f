// The runtime in a Web Worker: the same bundle the page imports. A message { modelUrl, images, batch } is answered
// with { logits } or { error }.
import { loadSparseModel } from "fwprune/runtime";

interface Request {
  modelUrl: string;
  images: Float32Array;
  batch: number;
}

const scope = self as unknown as { onmessage: (e: MessageEvent<Request>) => void; postMessage(message: unknown): void };
scope.onmessage = async (e) => {
  try {
    const bytes = new Uint8Array(await (await fetch(e.data.modelUrl)).arrayBuffer());
    const model = await loadSparseModel(bytes);
    scope.postMessage({ logits: model.predict(e.data.images, e.data.batch) });
  } catch (err) {
    scope.postMessage({ error: (err as Error).message });
  }
};
