import { test } from "node:test";
import * as assert from "node:assert/strict";
import { barChart, FIGURE_PALETTE, histogram, imageGrid, lineChart, scatterChart, withAlpha } from "../src/report/figures";
import { figureHtml, formatCell, formatProgress, formatSeconds, plainFigure, staticMarker, tableCells } from "../src/report/display";
import { cellErrorMessage, Notebook, postProcessHtml, stripNotebook } from "../src/report/notebooks";
import { closeBrowser, renderPng } from "../src/report/png";

const rows = [
  { method: "fw", epoch: 2, acc: 0.9, lo: 0.85, hi: 0.95 },
  { method: "dense", epoch: 1, acc: 0.8, lo: 0.75, hi: 0.85 },
  { method: "fw", epoch: 1, acc: 0.7, lo: 0.6, hi: 0.8 },
  { method: "dense", epoch: 2, acc: 0.85, lo: 0.8, hi: 0.9 },
];

test("lineChart: one line per group, sorted by x, in order of appearance, with matching colours", () => {
  const fig = lineChart({ rows, x: "epoch", y: "acc", group: "method", title: "T", xTitle: "epoch", yTitle: "accuracy" });
  assert.equal(fig.data.length, 2);
  assert.deepEqual(
    fig.data.map((t) => [t.name, t.x, t.y]),
    [
      ["fw", [1, 2], [0.7, 0.9]],
      ["dense", [1, 2], [0.8, 0.85]],
    ],
  );
  assert.deepEqual(
    fig.data.map((t) => (t.line as { color: string }).color),
    FIGURE_PALETTE.slice(0, 2),
  );
  assert.deepEqual(fig.layout.title, { text: "T" });
  assert.deepEqual((fig.layout.yaxis as { title: unknown }).title, { text: "accuracy" });
  assert.equal((fig.layout.yaxis as { type: string }).type, "-", "Plotly picks the axis type: names on an axis stay categories");
});

test("lineChart: the band is a closed polygon upper→lower, drawn before its line, same colour at alpha 0.2", () => {
  const fig = lineChart({
    rows,
    x: "epoch",
    y: "acc",
    group: "method",
    band: { lower: "lo", upper: "hi" },
    title: "T",
    groupOrder: ["dense", "fw"],
    logY: true,
  });
  assert.deepEqual(
    fig.data.map((t) => t.name),
    ["dense band", "dense", "fw band", "fw"],
  );
  const band = fig.data[0];
  assert.deepEqual(band.x, [1, 2, 2, 1]);
  assert.deepEqual(band.y, [0.85, 0.9, 0.8, 0.75]);
  assert.equal(band.fill, "toself");
  assert.equal(band.showlegend, false);
  assert.equal(band.fillcolor, withAlpha(FIGURE_PALETTE[0], 0.2));
  assert.equal(band.legendgroup, "dense");
  assert.equal((fig.layout.yaxis as { type: string }).type, "log");
});

test("lineChart: without a group, one unnamed line and no legend entry; null and NaN are gaps", () => {
  const fig = lineChart({
    rows: [
      { t: 0, v: 1 },
      { t: 1, v: NaN },
      { t: 2, v: null },
    ],
    x: "t",
    y: "v",
    title: "T",
  });
  assert.equal(fig.data.length, 1);
  assert.deepEqual(fig.data[0].y, [1, null, null]);
  assert.equal(fig.data[0].showlegend, false);
});

test("charts name the row, column and value when a cell is missing or not a number", () => {
  assert.throws(
    () => lineChart({ rows: [{ epoch: 1, acc: 0.5 }, { epoch: 2 }], x: "epoch", y: "acc", title: "T" }),
    /lineChart: row 1 has no column "acc"; its columns: epoch/,
  );
  assert.throws(
    () => lineChart({ rows: [{ epoch: 1, acc: "high" }], x: "epoch", y: "acc", title: "T" }),
    /lineChart: row 0 column "acc" is "high"; expected a finite number/,
  );
  assert.throws(() => scatterChart({ rows: [{ a: 1 }], x: "a", y: "a", group: "g", title: "T" }), /row 0 has no column "g" \(group\)/);
});

test("scatterChart, barChart and histogram build the traces their options ask for", () => {
  const scatter = scatterChart({ rows, x: "epoch", y: "acc", group: "method", text: "lo", title: "S" });
  assert.deepEqual(
    scatter.data.map((t) => [t.mode, t.text]),
    [
      ["markers", ["0.85", "0.6"]],
      ["markers", ["0.75", "0.8"]],
    ],
  );

  const bars = barChart({ rows, x: "method", y: "acc", group: "epoch", error: "lo", title: "B", groupOrder: ["1", "2"] });
  assert.equal(bars.layout.barmode, "group");
  assert.deepEqual(
    bars.data.map((t) => [t.name, t.x, t.y]),
    [
      ["1", ["dense", "fw"], [0.8, 0.7]],
      ["2", ["fw", "dense"], [0.9, 0.85]],
    ],
  );
  assert.deepEqual((bars.data[0].error_y as { array: number[] }).array, [0.75, 0.6]);
  assert.equal(barChart({ rows, x: "method", y: "acc", title: "B", stacked: true }).layout.barmode, "stack");

  // Common range 0..4 in 4 bins of width 1 (the top edge belongs to the last bin); counted by hand.
  const hist = histogram({ values: { a: new Float32Array([0, 0.5, 1, 2.2, 4]), b: [3.5, 4] }, bins: 4, title: "H", colors: { b: "#000000" } });
  assert.deepEqual(
    hist.data.map((t) => [t.name, t.x, t.y, t.width, (t.marker as { color: string }).color]),
    [
      ["a", [0.5, 1.5, 2.5, 3.5], [2, 1, 1, 1], 1, FIGURE_PALETTE[0]],
      ["b", [0.5, 1.5, 2.5, 3.5], [0, 0, 0, 2], 1, "#000000"],
    ],
  );
  const share = histogram({ values: { a: [0, 0.5, 1, 2.2, 4] }, bins: 4, title: "H", normalize: "percent" });
  assert.deepEqual(share.data[0].y, [40, 20, 20, 20]);
  // trim: the tails beyond the 25% and 75% values (0.5 and 2.2) are dropped.
  const trimmed = histogram({ values: { a: [0, 0.5, 1, 2.2, 4] }, bins: 2, trim: 0.25, title: "H" });
  assert.deepEqual(trimmed.data[0].y, [2, 1]);
});

test("imageGrid: one heatmap per image on its own axes, rows of pixels in order, captions as annotations", () => {
  const pixels = Array.from({ length: 3 * 4 }, (_, i) => i / 12); // three 2x2 images
  const fig = imageGrid({ pixels, count: 3, width: 2, height: 2, columns: 2, captions: ["a", "b", "c"], title: "digits" });
  assert.equal(fig.data.length, 3);
  assert.deepEqual(fig.data[1].z, [
    [4 / 12, 5 / 12],
    [6 / 12, 7 / 12],
  ]);
  assert.deepEqual(
    fig.data.map((t) => [t.xaxis, t.yaxis]),
    [
      ["x", "y"],
      ["x2", "y2"],
      ["x3", "y3"],
    ],
  );
  assert.ok(fig.layout.xaxis3 && fig.layout.yaxis3);
  assert.deepEqual(
    (fig.layout.annotations as { text: string }[]).map((a) => a.text),
    ["a", "b", "c"],
  );
  assert.throws(() => imageGrid({ pixels, count: 4, width: 2, height: 2, title: "x" }), /pixels has 12 values; expected at least count\*width\*height = 16/);
});

test("withAlpha converts #rrggbb and leaves other colours alone", () => {
  assert.equal(withAlpha("#ff0080", 0.5), "rgba(255,0,128,0.5)");
  assert.equal(withAlpha("red", 0.5), "red");
});

test("figureHtml: a div with the figure's id and marker, and JSON that cannot close the script early", () => {
  const fig = lineChart({ rows, x: "epoch", y: "acc", title: "</script><b>x</b>" });
  const html = figureHtml(plainFigure(fig), { id: "abc", width: 500, height: 300, staticMarker: "MARK" });
  assert.match(html, /<div id="fwprune-fig-abc" class="fwprune-plot" data-fwprune-static="MARK"><\/div>/);
  assert.equal(html.match(/<\/script>/g)?.length, 1, "only the script's own closing tag");
  assert.match(html, /\\u003c\/script>\\u003cb>x\\u003c\/b>/);
  assert.match(html, /Plotly\.newPlot/);
  const payload = JSON.parse(html.slice(html.lastIndexOf("})(") + 3, html.lastIndexOf(", document.currentScript)")));
  assert.equal(payload.layout.width, undefined);
  assert.equal(payload.layout.autosize, true);
  assert.deepEqual([payload.width, payload.height, payload.marker], [500, 300, "MARK"]);
});

test("plainFigure turns typed arrays into arrays and non-finite numbers into null", () => {
  const fig = plainFigure({ data: [{ type: "scatter", y: new Float32Array([1, 2]), x: [NaN, Infinity] }], layout: {} });
  assert.deepEqual(fig.data[0], { type: "scatter", y: [1, 2], x: [null, null] });
  assert.throws(() => plainFigure({ data: "nope" } as never), /expected a figure \{ data: Trace\[\], layout/);
});

test("tables: cells formatted to 4 significant digits, from row objects or a danfo-like frame", () => {
  assert.deepEqual(
    [0.123456, 12, 123456.7, 1e-5, NaN, null, "x", true].map((v) => formatCell(v)),
    ["0.1235", "12", "123457", "0.00001", "NaN", "", "x", "true"],
  );
  assert.deepEqual(
    tableCells([
      { a: 1, b: 0.5 },
      { b: 2, c: "z" },
    ]),
    {
      columns: ["a", "b", "c"],
      rows: [
        ["1", "0.5", ""],
        ["", "2", "z"],
      ],
    },
  );
  assert.deepEqual(tableCells({ columns: ["m", "v"], values: [["fw", 0.987654]] }), { columns: ["m", "v"], rows: [["fw", "0.9877"]] });
  assert.throws(() => tableCells({} as never), /expected a danfo DataFrame/);
});

test("formatProgress: bar, count, percent, elapsed, ETA; done state", () => {
  const p = formatProgress({ label: "train", done: 25, total: 100, elapsedMs: 10000, note: "loss 0.3" });
  assert.equal(p.text, "train [######------------------] 25/100 (25%) · 10.0 s · ETA 30.0 s · loss 0.3");
  assert.match(p.html, /<progress max="100" value="25"><\/progress>/);
  const done = formatProgress({ label: "x<y", done: 3, total: 3, elapsedMs: 125000, finished: true });
  assert.equal(done.text, "x<y [########################] 3/3 (100%) · 2 min 5 s · done");
  assert.match(done.html, /<b>x&lt;y<\/b>/);
  assert.equal(formatSeconds(7260), "2 h 1 min");
});

test("stripNotebook drops plotly.js loader outputs only; cellErrorMessage keeps the cell's error, not tslab's stack", () => {
  const nb: Notebook = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {},
    cells: [
      {
        cell_type: "code",
        source: ["x"],
        outputs: [
          { output_type: "display_data", data: { "text/html": "<script>big</script>" }, metadata: { fwprune: { role: "plotly-loader" } } },
          { output_type: "display_data", data: { "text/html": "<div></div>" }, metadata: { fwprune: { role: "figure-interactive" } } },
        ],
      },
      {
        cell_type: "code",
        source: ["\n", "const lr = -1;\n", "train(lr);"],
        outputs: [
          { output_type: "stream", name: "stdout", text: ["started\n"] },
          {
            output_type: "stream",
            name: "stderr",
            text: "Error: lr is -1; expected > 0\n    at train (evalmachine.<anonymous>:3:9)\n    at Object.execute (/r/node_modules/tslab/dist/executor.js:160:38)\n    at Script.runInThisContext (node:vm:135:14)\n",
          },
        ],
      },
    ],
  };
  stripNotebook(nb);
  assert.deepEqual(
    nb.cells[0].outputs!.map((o) => (o.metadata!.fwprune as { role: string }).role),
    ["figure-interactive"],
  );
  const msg = cellErrorMessage("/x/05-sweep.ipynb", nb, { kind: "CellExecutionError", cell: 1, message: "<Error>: " });
  assert.equal(msg, "notebook 05-sweep.ipynb, cell 2 (const lr = -1;) failed:\nError: lr is -1; expected > 0\n    at train (evalmachine.<anonymous>:3:9)");
  const timeout = cellErrorMessage("/x/a.ipynb", nb, {
    kind: "CellTimeoutError",
    cell: 0,
    message: "A cell timed out while it was being executed, after 5 seconds.\nmore",
  });
  assert.match(timeout, /cell 1 \(x\) failed:\ntimed out \(A cell timed out while it was being executed, after 5 seconds\.\)/);
});

test("postProcessHtml removes require.js and MathJax (or loads MathJax async from its CDN) and inlines plotly.js once", () => {
  const html =
    '<html><head><script src="https://cdnjs.cloudflare.com/ajax/libs/require.js/2.1.10/require.min.js"></script>\n' +
    '<script src="file:///usr/share/javascript/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe"> </script></head><body></body></html>';
  const out = postProcessHtml(html, { inlinePlotly: true });
  assert.doesNotMatch(out, /require\.min\.js|MathJax\.js/);
  assert.equal(out.match(/plotly\.js v3/g)?.length, 1);
  assert.ok(out.indexOf("window.Plotly") < out.indexOf("</head>"));
  const cdn = postProcessHtml(html, { inlinePlotly: false, mathjax: "cdn" });
  assert.match(cdn, /<script async src="https:\/\/cdnjs\.cloudflare\.com\/ajax\/libs\/mathjax\/2\.7\.7\/MathJax\.js/);
  assert.doesNotMatch(cdn, /plotly\.js v3/);
});

test("renderPng draws a figure to a PNG of the requested size in headless Chromium", async (t) => {
  t.after(closeBrowser);
  const fig = lineChart({ rows, x: "epoch", y: "acc", group: "method", band: { lower: "lo", upper: "hi" }, title: "png" });
  const png = await renderPng(fig, { width: 400, height: 250, scale: 2 });
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [800, 500]);
  assert.ok(png.length > 5000, `a drawn chart is more than a blank image (${png.length} bytes)`);
  // The marker that identifies a figure's static image in a page tells two different figures apart.
  const other = await renderPng(lineChart({ rows, x: "epoch", y: "acc", group: "method", title: "another" }), { width: 400, height: 250 });
  assert.notEqual(staticMarker(other.toString("base64")), staticMarker(png.toString("base64")));
});

test("lineChart: the band joins only the points with both bounds; a lone one gets an error bar", () => {
  const partial = [
    { g: "a", x: 1, y: 0.5, lo: 0.4, hi: 0.7 },
    { g: "a", x: 2, y: 0.6, lo: NaN, hi: NaN },
    { g: "a", x: 3, y: 0.7, lo: 0.6, hi: 0.8 },
    { g: "b", x: 1, y: 0.2, lo: 0.1, hi: 0.25 },
    { g: "b", x: 2, y: 0.3, lo: NaN, hi: NaN },
  ];
  const fig = lineChart({ rows: partial, x: "x", y: "y", group: "g", band: { lower: "lo", upper: "hi" }, title: "bands" });
  const band = fig.data.find((t) => t.name === "a band")!;
  assert.deepEqual(
    [band.x, band.y],
    [
      [1, 3, 3, 1],
      [0.7, 0.8, 0.6, 0.4],
    ],
  );
  assert.equal(
    fig.data.some((t) => t.name === "b band"),
    false,
  );
  const b = fig.data.find((t) => t.name === "b")!;
  const bars = b.error_y as { array: (number | null)[]; arrayminus: (number | null)[] };
  assert.deepEqual(
    bars.array.map((v) => (v === null ? null : Number(v.toFixed(6)))),
    [0.05, null],
  );
  assert.deepEqual(
    bars.arrayminus.map((v) => (v === null ? null : Number(v.toFixed(6)))),
    [0.1, null],
  );
});
