// Plotly figure specs ({ data, layout }) built from plain rows. Pure functions: no DOM, no Plotly import.
// Display them with showFigure (display.ts), write a PNG with figureToPng.

export type ChartRow = Record<string, unknown>;

/** One Plotly trace; the keys are Plotly's (https://plotly.com/javascript/reference/). */
export interface PlotlyTrace {
  type: string;
  [key: string]: unknown;
}

export interface PlotlyFigure {
  data: PlotlyTrace[];
  layout: Record<string, unknown>;
}

/** Plotly's default qualitative palette (D3 category10), so a group keeps its colour across figures. */
export const FIGURE_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

export interface AxesOptions {
  title: string;
  xTitle?: string;
  yTitle?: string;
  logX?: boolean;
  logY?: boolean;
  /** Fixed group order (legend order, colours); groups not listed follow in order of appearance. */
  groupOrder?: string[];
  /** Group name → colour; others take FIGURE_PALETTE colours by position. */
  colors?: Record<string, string>;
  width?: number;
  height?: number;
}

export interface LineChartOptions extends AxesOptions {
  rows: ChartRow[];
  x: string;
  y: string;
  /** Column whose values split the rows into lines (one per value); without it, one line. */
  group?: string;
  /** Columns holding each point's lower and upper bound: drawn as a shaded band around the line. */
  band?: { lower: string; upper: string };
  markers?: boolean;
}

export interface ScatterChartOptions extends AxesOptions {
  rows: ChartRow[];
  x: string;
  y: string;
  group?: string;
  /** Column shown on hover beside each point. */
  text?: string;
  /** Columns with each point's symmetric error on x and on y (drawn as error bars). */
  errorX?: string;
  errorY?: string;
}

export interface BarChartOptions extends AxesOptions {
  rows: ChartRow[];
  /** Category column (the bars' positions). */
  x: string;
  y: string;
  group?: string;
  /** Column with each bar's symmetric error (drawn as an error bar). */
  error?: string;
  stacked?: boolean;
}

export interface HistogramOptions extends AxesOptions {
  /** Group name → sample values (one overlaid histogram per group). */
  values: Record<string, ArrayLike<number>>;
  /** Equal-width bins over the common range (default 50). */
  bins?: number;
  /** Drop this fraction of the values in each tail (of all groups together) before binning, e.g. 0.005. */
  trim?: number;
  /** What a bar shows: the count (default), or each group's share of its values (fraction or percent). */
  normalize?: "count" | "share" | "percent";
}

export interface ImageGridOptions {
  /** Images in row-major order, each width*height grey values in [0,1], concatenated. */
  pixels: ArrayLike<number>;
  count: number;
  width?: number;
  height?: number;
  columns?: number;
  /** One caption per image (e.g. its label). */
  captions?: string[];
  title: string;
}

/** Line chart: one line per group, sorted by x, with an optional shaded band (e.g. a confidence interval). */
export function lineChart(opts: LineChartOptions): PlotlyFigure {
  const chart = "lineChart";
  const groups = groupRows(chart, opts.rows, opts.group, opts.groupOrder);
  const colors = groupColors(
    groups.map((g) => g.name),
    opts.colors,
  );
  const data: PlotlyTrace[] = [];
  for (const { name, rows } of groups) {
    const sorted = sortByX(chart, rows, opts.x);
    const xs = sorted.map((r, i) => xValue(chart, r, opts.x, i));
    const color = colors.get(name)!;
    const ys = sorted.map((r, i) => numberValue(chart, r, opts.y, i));
    let errorBars: Record<string, unknown> | undefined;
    if (opts.band) {
      const lower = sorted.map((r, i) => numberValue(chart, r, opts.band!.lower, i));
      const upper = sorted.map((r, i) => numberValue(chart, r, opts.band!.upper, i));
      // The band joins the points that have both bounds; a lone such point gets an error bar instead.
      const finite = sorted.map((_, i) => i).filter((i) => lower[i] !== null && upper[i] !== null && ys[i] !== null);
      if (finite.length >= 2) {
        const bx = finite.map((i) => xs[i]);
        data.push({
          type: "scatter",
          mode: "lines",
          x: [...bx, ...[...bx].reverse()],
          y: [...finite.map((i) => upper[i]), ...finite.map((i) => lower[i]).reverse()],
          fill: "toself",
          fillcolor: withAlpha(color, 0.2),
          line: { width: 0, color },
          hoverinfo: "skip",
          showlegend: false,
          legendgroup: name,
          name: `${name} band`,
        });
      } else if (finite.length === 1) {
        const i = finite[0];
        const [y, lo, hi] = [ys[i], lower[i], upper[i]] as number[];
        const at = (v: number) => ys.map((_, j) => (j === i ? v : null));
        errorBars = { type: "data", symmetric: false, array: at(hi - y), arrayminus: at(y - lo), color, thickness: 1.5, width: 4 };
      }
    }
    data.push({
      type: "scatter",
      mode: opts.markers ? "lines+markers" : "lines",
      x: xs,
      y: ys,
      name,
      legendgroup: name,
      line: { color, width: 2 },
      showlegend: opts.group !== undefined,
      ...(errorBars ? { error_y: errorBars } : {}),
    });
  }
  return { data, layout: baseLayout(opts) };
}

/** Scatter chart: one marker series per group. */
export function scatterChart(opts: ScatterChartOptions): PlotlyFigure {
  const chart = "scatterChart";
  const groups = groupRows(chart, opts.rows, opts.group, opts.groupOrder);
  const colors = groupColors(
    groups.map((g) => g.name),
    opts.colors,
  );
  const data: PlotlyTrace[] = groups.map(({ name, rows }) => ({
    type: "scatter",
    mode: "markers",
    x: rows.map((r, i) => xValue(chart, r, opts.x, i)),
    y: rows.map((r, i) => numberValue(chart, r, opts.y, i)),
    ...(opts.text ? { text: rows.map((r) => String(r[opts.text!])) } : {}),
    ...(opts.errorX ? { error_x: { type: "data", array: rows.map((r, i) => numberValue(chart, r, opts.errorX!, i)), visible: true } } : {}),
    ...(opts.errorY ? { error_y: { type: "data", array: rows.map((r, i) => numberValue(chart, r, opts.errorY!, i)), visible: true } } : {}),
    name,
    marker: { color: colors.get(name), size: 8, opacity: 0.8 },
    showlegend: opts.group !== undefined,
  }));
  return { data, layout: baseLayout(opts) };
}

/** Bar chart: bars grouped side by side (or stacked) per category, with optional error bars. */
export function barChart(opts: BarChartOptions): PlotlyFigure {
  const chart = "barChart";
  const groups = groupRows(chart, opts.rows, opts.group, opts.groupOrder);
  const colors = groupColors(
    groups.map((g) => g.name),
    opts.colors,
  );
  const data: PlotlyTrace[] = groups.map(({ name, rows }) => ({
    type: "bar",
    x: rows.map((r, i) => xValue(chart, r, opts.x, i)),
    y: rows.map((r, i) => numberValue(chart, r, opts.y, i)),
    ...(opts.error ? { error_y: { type: "data", array: rows.map((r, i) => numberValue(chart, r, opts.error!, i)), visible: true } } : {}),
    name,
    marker: { color: colors.get(name) },
    showlegend: opts.group !== undefined,
  }));
  const layout = baseLayout(opts);
  layout.barmode = opts.stacked ? "stack" : "group";
  return { data, layout };
}

/** Overlaid histograms, one per group of values. */
/**
 * Overlaid histograms, binned here (equal-width bins over the groups' common range) so that a figure of 225k weights
 * stays a few kilobytes: one bar trace per group, bars at the bin centres.
 */
export function histogram(opts: HistogramOptions): PlotlyFigure {
  const names = orderNames(Object.keys(opts.values), opts.groupOrder);
  const colors = groupColors(names, opts.colors);
  const bins = opts.bins ?? 50;
  const all = Float64Array.from(names.flatMap((n) => Array.from(opts.values[n])))
    .filter(Number.isFinite)
    .sort();
  const at = (q: number) => all[Math.min(all.length - 1, Math.max(0, Math.round(q * (all.length - 1))))];
  const lo = all.length ? at(opts.trim ?? 0) : 0;
  const hi = all.length ? at(1 - (opts.trim ?? 0)) : 1;
  const width = hi > lo ? (hi - lo) / bins : 1;
  const data: PlotlyTrace[] = names.map((name) => {
    const counts = new Array<number>(bins).fill(0);
    let total = 0;
    for (const v of Array.from(opts.values[name])) {
      if (!Number.isFinite(v) || v < lo || v > hi) continue;
      counts[Math.min(bins - 1, Math.floor((v - lo) / width))]++;
      total++;
    }
    const scale = opts.normalize === "share" ? 1 / Math.max(1, total) : opts.normalize === "percent" ? 100 / Math.max(1, total) : 1;
    return {
      type: "bar",
      x: counts.map((_, i) => lo + (i + 0.5) * width),
      y: counts.map((c) => c * scale),
      width,
      name,
      opacity: names.length > 1 ? 0.6 : 1,
      marker: { color: colors.get(name) },
    };
  });
  const layout = baseLayout(opts);
  layout.barmode = "overlay";
  layout.bargap = 0;
  return { data, layout };
}

/** A grid of grey-scale images (e.g. MNIST digits), one heatmap per cell, captions as subplot titles. */
export function imageGrid(opts: ImageGridOptions): PlotlyFigure {
  const width = opts.width ?? 28;
  const height = opts.height ?? 28;
  const columns = Math.min(opts.columns ?? 8, opts.count);
  if (opts.pixels.length < opts.count * width * height) {
    throw new Error(`imageGrid: pixels has ${opts.pixels.length} values; expected at least count*width*height = ${opts.count * width * height}`);
  }
  if (opts.captions && opts.captions.length < opts.count) {
    throw new Error(`imageGrid: captions has ${opts.captions.length} entries; expected one per image (${opts.count})`);
  }
  const rowsOfImages = Math.ceil(opts.count / columns);
  const gap = 0.02;
  const cellW = (1 - gap * (columns - 1)) / columns;
  const cellH = (1 - gap * 2 * (rowsOfImages - 1)) / rowsOfImages;
  const data: PlotlyTrace[] = [];
  const layout: Record<string, unknown> = {
    title: { text: opts.title },
    margin: { l: 10, r: 10, t: 60, b: 10 },
    width: Math.max(320, columns * 80),
    height: 70 + rowsOfImages * 90,
    annotations: [] as unknown[],
  };
  for (let i = 0; i < opts.count; i++) {
    const img: number[][] = [];
    for (let r = 0; r < height; r++) {
      const start = i * width * height + r * width;
      img.push(Array.from({ length: width }, (_, c) => opts.pixels[start + c]));
    }
    const axis = i === 0 ? "" : String(i + 1);
    const col = i % columns;
    const row = Math.floor(i / columns);
    const x0 = col * (cellW + gap);
    const y1 = 1 - row * (cellH + 2 * gap);
    data.push({
      type: "heatmap",
      z: img,
      zmin: 0,
      zmax: 1,
      colorscale: "Greys",
      reversescale: true,
      showscale: false,
      xaxis: `x${axis}`,
      yaxis: `y${axis}`,
      hoverinfo: "skip",
    });
    const hidden = { visible: false, fixedrange: true };
    layout[`xaxis${axis}`] = { ...hidden, domain: [x0, x0 + cellW], anchor: `y${axis}` };
    layout[`yaxis${axis}`] = {
      ...hidden,
      domain: [y1 - cellH, y1],
      anchor: `x${axis}`,
      autorange: "reversed",
      scaleanchor: `x${axis}`,
    };
    if (opts.captions) {
      (layout.annotations as unknown[]).push({
        text: opts.captions[i],
        x: x0 + cellW / 2,
        y: y1,
        xref: "paper",
        yref: "paper",
        xanchor: "center",
        yanchor: "bottom",
        showarrow: false,
        font: { size: 12 },
      });
    }
  }
  return { data, layout };
}

function baseLayout(opts: AxesOptions): Record<string, unknown> {
  const axis = (title: string | undefined, log: boolean | undefined) => ({
    title: { text: title ?? "" },
    type: log ? "log" : "-", // "-": Plotly picks (categories stay categories)
    zeroline: false,
    automargin: true,
  });
  const layout: Record<string, unknown> = {
    title: { text: opts.title },
    xaxis: axis(opts.xTitle, opts.logX),
    yaxis: axis(opts.yTitle, opts.logY),
    hovermode: "closest",
    legend: { orientation: "v" },
    margin: { l: 70, r: 20, t: 60, b: 60 },
  };
  if (opts.width) layout.width = opts.width;
  if (opts.height) layout.height = opts.height;
  return layout;
}

interface Group {
  name: string;
  rows: ChartRow[];
}

function groupRows(chart: string, rows: ChartRow[], column: string | undefined, order?: string[]): Group[] {
  if (!Array.isArray(rows)) throw new Error(`${chart}: rows must be an array of objects; got ${typeof rows}`);
  if (column === undefined) return [{ name: "", rows }];
  const byName = new Map<string, ChartRow[]>();
  rows.forEach((row, i) => {
    if (!(column in row)) {
      throw new Error(`${chart}: row ${i} has no column "${column}" (group); its columns: ${Object.keys(row).join(", ")}`);
    }
    const name = String(row[column]);
    if (!byName.has(name)) byName.set(name, []);
    byName.get(name)!.push(row);
  });
  return orderNames([...byName.keys()], order).map((name) => ({ name, rows: byName.get(name)! }));
}

function orderNames(names: string[], order?: string[]): string[] {
  if (!order) return names;
  const known = order.filter((n) => names.includes(n));
  return [...known, ...names.filter((n) => !order.includes(n))];
}

function groupColors(names: string[], fixed?: Record<string, string>): Map<string, string> {
  return new Map(names.map((name, i) => [name, fixed?.[name] ?? FIGURE_PALETTE[i % FIGURE_PALETTE.length]]));
}

function cell(chart: string, row: ChartRow, column: string, index: number): unknown {
  if (!(column in row)) {
    throw new Error(`${chart}: row ${index} has no column "${column}"; its columns: ${Object.keys(row).join(", ")}`);
  }
  return row[column];
}

/** A y-like value: a finite number, or null/NaN for a gap. */
function numberValue(chart: string, row: ChartRow, column: string, index: number): number | null {
  const v = cell(chart, row, column, index);
  if (v === null || v === undefined || (typeof v === "number" && Number.isNaN(v))) return null;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new Error(`${chart}: row ${index} column "${column}" is ${JSON.stringify(v)}; expected a finite number (or null for a gap)`);
  }
  return v;
}

/** An x-like value: a finite number or a category string. */
function xValue(chart: string, row: ChartRow, column: string, index: number): number | string {
  const v = cell(chart, row, column, index);
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string") return v;
  throw new Error(`${chart}: row ${index} column "${column}" is ${JSON.stringify(v)}; expected a finite number or a string`);
}

function sortByX(chart: string, rows: ChartRow[], x: string): ChartRow[] {
  const values = rows.map((r, i) => xValue(chart, r, x, i));
  if (!values.every((v) => typeof v === "number")) return rows;
  return rows
    .map((row, i) => ({ row, v: values[i] as number }))
    .sort((a, b) => a.v - b.v)
    .map((e) => e.row);
}

/** "#rrggbb" → "rgba(r,g,b,alpha)"; other colour strings are returned unchanged. */
export function withAlpha(color: string, alpha: number): string {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (!m) return color;
  const [r, g, b] = [m[1], m[2], m[3]].map((h) => parseInt(h, 16));
  return `rgba(${r},${g},${b},${alpha})`;
}
