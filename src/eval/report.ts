import { describeIdentity } from '../io/identity.js';
import {
  compareModels,
  DOMAIN_TITLES,
  DOMAINS,
  MODE_TITLES,
  type Comparison,
  type DomainAccuracy,
  type ModelRun,
} from './compare.js';
import type { ModeResult, SkippedMode } from './evaluate.js';

export interface ReportInput {
  dataset: string;
  classes: string[];
  /** One or more models, each with its results, in the order they were given. */
  models: ModelRun[];
  /** Modes the dataset could not run, with why (the same for every model). */
  skipped?: SkippedMode[];
  settings: Record<string, unknown>;
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const pct = (v: number): string => (Number.isNaN(v) ? '–' : `${v.toFixed(1)}%`);

/** One self-contained HTML page (inline CSS and SVG, no external URL) of an evaluation of one model or several. */
export function renderReport(input: ReportInput): string {
  const { dataset, classes, models } = input;
  const comparison = compareModels(models);
  const skipped = (input.skipped ?? [])
    .map((m) => `<p class="skipped"><b>${esc(m.mode)} skipped:</b> ${esc(m.reason)}</p>`)
    .join('\n');
  const settings = Object.entries(input.settings)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${esc(k)} ${esc(String(v))}`)
    .join(' · ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>whylesion eval: ${esc(dataset)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:24px 0 8px;border-top:1px solid #ddd;padding-top:12px}h3{font-size:16px;margin:20px 0 8px}
table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #eee;text-align:right}td:first-child,th:first-child{text-align:left}
.wide{overflow-x:auto;max-width:100%}h2.name{overflow-wrap:anywhere}
.compare th,.compare td{text-align:right}.compare th.group{text-align:center}.compare .model{text-align:left;min-width:10em}
.identity{font:12px/1.5 ui-monospace,monospace;overflow-wrap:anywhere;color:#555;margin:4px 0 12px}
.row figure{margin:0;max-width:100%}.row svg,.chart svg{max-width:100%;height:auto}.row{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}.muted{color:#777}
.chart{margin:12px 0 0}.legend{display:flex;flex-wrap:wrap;gap:4px 16px;margin:8px 0;font-size:13px}.legend span{white-space:nowrap}
.legend i{display:inline-block;width:12px;height:12px;margin-right:5px;vertical-align:-1px}
.skipped{color:#8a5a00}
.concepts{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:12px}.concepts ol{margin:4px 0;padding-left:20px}
</style></head><body>
<h1>${esc(dataset)}: ${classes.length} classes</h1>
<p class="muted">${settings}. Research use only; not for clinical diagnosis.</p>
${comparisonHtml(comparison)}
${skipped}
${models.map((run) => modelHtml(run, classes)).join('\n')}
</body></html>
`;
}

/** The models side by side: a table and a grouped bar chart of each compared mode's accuracy per model. */
function comparisonHtml(comparison: Comparison): string {
  const { modes, rows } = comparison;
  const head = `<tr><th rowspan="2" class="model">model</th>${modes.map((m) => `<th class="group" colspan="${DOMAINS.length}">${esc(MODE_TITLES[m])}</th>`).join('')}</tr><tr>${modes.map(() => DOMAINS.map((d) => `<th>${DOMAIN_TITLES[d]}</th>`).join('')).join('')}</tr>`;
  const body = rows
    .map(
      (r) =>
        `<tr><td class="model">${breakable(r.model)}</td>${modes.map((m) => DOMAINS.map((d) => `<td>${accuracyCell(r.accuracy[m], d)}</td>`).join('')).join('')}</tr>`,
    )
    .join('');
  const legend = modes
    .flatMap((m, i) =>
      DOMAINS.map(
        (d, j) =>
          `<span><i style="background:${barColor(i, j)}"></i>${esc(MODE_TITLES[m])}, ${DOMAIN_TITLES[d]}</span>`,
      ),
    )
    .join('');
  const title = modes.map((m) => MODE_TITLES[m]).join(' and ');
  return `<section class="comparison"><h2>${esc(title.charAt(0).toUpperCase() + title.slice(1))} accuracy per model</h2>
<div class="wide"><table class="compare">${head}${body}</table></div>
<p class="muted">In-domain: val; out-of-domain: test, the shifted set; accuracy in %.</p>
<figure class="chart"><div class="legend">${legend}</div>${comparisonSvg(comparison)}</figure></section>`;
}

/** A model name that may wrap after each '/' (a path or Hub id) rather than anywhere. */
const breakable = (name: string): string => esc(name).replaceAll('/', '/<wbr>');

const accuracyCell = (a: DomainAccuracy | undefined, d: keyof DomainAccuracy): string => (a ? pct(a[d]) : '–');

/** Colours per mode (a hue each), per domain a shade: in-domain mid, out-of-domain light, average dark. */
const PALETTE = [
  ['#3b78c4', '#9fc0e8', '#1c3f6b'],
  ['#e07b2c', '#f5c08f', '#8a4210'],
  ['#3a9a5b', '#a5d9b4', '#1d5632'],
  ['#8a5cc2', '#cdb6ea', '#4b2a75'],
];
const barColor = (mode: number, domain: number): string => PALETTE[mode % PALETTE.length]?.[domain] ?? '#888';

/** Breaks a model name into lines of at most `max` characters, after '/', '-', '_', '.' or ':' where it can. */
function wrapName(name: string, max: number): string[] {
  const lines: string[] = [];
  let rest = name;
  while (rest.length > max) {
    const head = rest.slice(0, max);
    const cut = Math.max(...['/', '-', '_', '.', ':'].map((c) => head.lastIndexOf(c)));
    const at = cut > max / 3 ? cut + 1 : max;
    lines.push(rest.slice(0, at));
    rest = rest.slice(at);
  }
  return rest.length > 0 ? [...lines, rest] : lines;
}

/**
 * A grouped bar chart: one group per model, in it per mode one bar per domain, each bar's height its accuracy on
 * a 0–100% axis, its value written above it. Bars carry data-model/-mode/-domain/-value for tools and tests.
 */
function comparisonSvg(comparison: Comparison): string {
  const { modes, rows } = comparison;
  const bar = 16,
    modeGap = 8,
    groupGap = 28,
    axis = 44,
    plot = 220,
    top = textWidth('100.0', 10) + 8, // room for a rotated value label above a full bar
    bottom = top + plot,
    nameFont = 11,
    nameLineHeight = 14,
    maxNameChars = 30;
  const barsWidth = modes.length * DOMAINS.length * bar + (modes.length - 1) * modeGap;
  const names = rows.map((r) => wrapName(r.model, maxNameChars));
  const groupWidths = names.map((lines) => Math.max(barsWidth, ...lines.map((l) => textWidth(l, nameFont))));
  const nameLines = Math.max(1, ...names.map((lines) => lines.length));
  const width = axis + groupWidths.reduce((a, b) => a + b + groupGap, 0) + 4;
  const height = bottom + 10 + nameLines * nameLineHeight + 6;
  const y = (percent: number): number => bottom - (percent / 100) * plot;
  const parts: string[] = [];
  for (const percent of [0, 25, 50, 75, 100]) {
    parts.push(
      `<line class="grid" data-percent="${percent}" x1="${axis}" x2="${width - 4}" y1="${y(percent)}" y2="${y(percent)}" stroke="${percent === 0 ? '#555' : '#e4e4e4'}"/>`,
      `<text x="${axis - 6}" y="${y(percent) + 4}" text-anchor="end" font-size="10" fill="#555">${percent}%</text>`,
    );
  }
  let x0 = axis + groupGap / 2;
  rows.forEach((row, g) => {
    const groupWidth = groupWidths[g] ?? barsWidth;
    let x = x0 + (groupWidth - barsWidth) / 2;
    modes.forEach((mode, i) => {
      DOMAINS.forEach((domain, j) => {
        const value = row.accuracy[mode]?.[domain];
        if (value !== undefined && !Number.isNaN(value)) {
          const h = round2((value / 100) * plot);
          const cx = x + bar / 2;
          parts.push(
            `<rect class="bar" data-model="${g}" data-mode="${mode}" data-domain="${domain}" data-value="${value}" x="${round2(x)}" y="${round2(bottom - h)}" width="${bar - 2}" height="${h}" fill="${barColor(i, j)}"><title>${esc(row.model)}: ${esc(MODE_TITLES[mode])}, ${DOMAIN_TITLES[domain]} ${pct(value)}</title></rect>`,
            `<text class="value" x="${round2(cx + 2)}" y="${round2(bottom - h - 4)}" transform="rotate(-90 ${round2(cx + 2)} ${round2(bottom - h - 4)})" font-size="10">${value.toFixed(1)}</text>`,
          );
        }
        x += bar;
      });
      x += modeGap;
    });
    const lines = names[g] ?? [];
    parts.push(
      `<text class="model" x="${round2(x0 + groupWidth / 2)}" y="${bottom + 10 + nameFont}" text-anchor="middle" font-size="${nameFont}">${lines
        .map(
          (l, k) => `<tspan x="${round2(x0 + groupWidth / 2)}" dy="${k === 0 ? 0 : nameLineHeight}">${esc(l)}</tspan>`,
        )
        .join('')}<title>${esc(row.model)}</title></text>`,
    );
    x0 += groupWidth + groupGap;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="accuracy per model" data-plot-height="${plot}">
${parts.join('\n')}</svg>`;
}

const round2 = (v: number): number => Math.round(v * 100) / 100;

/** One model: its identity, the paper's table and, per mode, confusion matrices, recall and top concepts. */
function modelHtml(run: ModelRun, classes: string[]): string {
  const table = `<div class="wide"><table><tr><th>mode</th><th>val</th><th>test</th><th>gap</th><th>average</th><th>balanced (test)</th></tr>${run.results
    .map(
      (r) =>
        `<tr><td>${r.mode}</td><td>${pct(r.val_acc)}</td><td>${pct(r.test_acc)}</td><td>${pct(r.gap)}</td><td>${pct(r.average)}</td><td>${pct(r.balanced_acc)}</td></tr>`,
    )
    .join('')}</table></div>`;
  const sections = run.results
    .map(
      (r) => `<h3>${esc(run.model)}: ${r.mode}</h3>
<div class="row">${confusionSvg(r.confusion.val, classes, 'val (in-distribution)')}${confusionSvg(r.confusion.test, classes, 'test (shifted)')}${recallSvg(r, classes)}</div>
${r.top_concepts ? conceptsHtml(r.top_concepts) : ''}`,
    )
    .join('\n');
  const id = run.identity;
  return `<section class="model"><h2 class="name">${esc(run.model)}</h2>
<p class="identity" title="${esc(describeIdentity(id))}">weights ${esc(id.weights)}<br>config ${esc(id.config)}<br>dtype ${esc(id.dtype)} · source ${esc(id.source)}</p>
${table}
${sections}</section>`;
}

/** Width in pixels a label of `text` takes at `fontSize` (a generous average glyph width, so nothing is cut). */
const textWidth = (text: string, fontSize: number): number => Math.ceil(text.length * fontSize * 0.62);

/** Room for the row labels: the longest (shortened) class name. */
const labelWidth = (classes: readonly string[]): number =>
  Math.max(60, ...classes.map((c) => textWidth(short(c), 11) + 12));

function confusionSvg(matrix: number[][], classes: string[], title: string): string {
  const K = classes.length,
    cell = Math.max(28, Math.min(56, Math.floor(360 / K))),
    label = labelWidth(classes);
  // Column labels are the class names, written upward from just above their column; the caption sits above them.
  const captionBottom = 34,
    columnLabels = Math.max(...classes.map((c) => textWidth(short(c), 10))),
    top = captionBottom + 8 + columnLabels + 6;
  const width = Math.max(
    label + K * cell + 10,
    label + textWidth(`rows: true class · columns: predicted`, 10) + 10,
    textWidth(title, 13) + label + 10,
  );
  const cells: string[] = [];
  matrix.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((n, j) => {
      const share = n / total,
        x = label + j * cell,
        y = top + i * cell;
      const color =
        i === j ? `rgba(34,139,84,${0.1 + 0.9 * share})` : `rgba(200,60,50,${share === 0 ? 0.03 : 0.1 + 0.9 * share})`;
      cells.push(
        `<rect x="${x}" y="${y}" width="${cell - 2}" height="${cell - 2}" fill="${color}"><title>${esc(classes[i]!)} → ${esc(classes[j]!)}: ${n}</title></rect>`,
        `<text x="${x + cell / 2 - 1}" y="${y + cell / 2 + 4}" text-anchor="middle" font-size="11" fill="${share > 0.6 ? '#fff' : '#222'}">${n}</text>`,
      );
    });
    cells.push(
      `<text x="${label - 6}" y="${top + i * cell + cell / 2 + 4}" text-anchor="end" font-size="11">${esc(short(classes[i]!))}<title>${esc(classes[i]!)}</title></text>`,
    );
  });
  classes.forEach((c, j) => {
    const x = label + j * cell + cell / 2 + 3,
      y = top - 6;
    cells.push(
      `<text x="${x}" y="${y}" transform="rotate(-90 ${x} ${y})" font-size="10">${esc(short(c))}<title>${esc(c)}</title></text>`,
    );
  });
  const height = top + K * cell + 12;
  return `<figure><svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="confusion matrix ${esc(title)}">
<text x="${label}" y="14" font-size="13" font-weight="600">${esc(title)}</text><text x="${label}" y="30" font-size="10" fill="#777">rows: true class · columns: predicted</text>
${cells.join('')}</svg></figure>`;
}

function recallSvg(result: ModeResult, classes: string[]): string {
  const label = labelWidth(classes),
    width = 220,
    bar = 9,
    rowHeight = 26,
    top = 30;
  const valueWidth = textWidth('100.0% / 100.0%', 10) + 12;
  const rows = classes.map((c, k) => {
    const y = top + k * rowHeight,
      v = result.recall.val[k]!,
      t = result.recall.test[k]!;
    const w = (x: number) => (Number.isNaN(x) ? 0 : (x / 100) * width);
    return `<text x="${label - 6}" y="${y + 12}" text-anchor="end" font-size="11">${esc(short(c))}<title>${esc(c)}</title></text>
<rect x="${label}" y="${y}" width="${w(v)}" height="${bar}" fill="#4a7fc1"><title>val recall ${pct(v)}</title></rect>
<rect x="${label}" y="${y + bar + 1}" width="${w(t)}" height="${bar}" fill="#e0893a"><title>test recall ${pct(t)}</title></rect>
<text x="${label + width + 6}" y="${y + 12}" font-size="10">${pct(v)} / ${pct(t)}</text>`;
  });
  const svgWidth = label + width + valueWidth,
    height = top + classes.length * rowHeight + 10;
  return `<figure><svg xmlns="http://www.w3.org/2000/svg" width="${svgWidth}" height="${height}" viewBox="0 0 ${svgWidth} ${height}" role="img" aria-label="per-class recall">
<text x="${label}" y="14" font-size="13" font-weight="600">per-class recall</text>
<rect x="${label + 120}" y="5" width="10" height="10" fill="#4a7fc1"/><text x="${label + 134}" y="14" font-size="11">val</text>
<rect x="${label + 164}" y="5" width="10" height="10" fill="#e0893a"/><text x="${label + 178}" y="14" font-size="11">test</text>
${rows.join('')}</svg></figure>`;
}

function conceptsHtml(top: Record<string, { concept: string; weight: number }[]>): string {
  return `<h3>Concepts with the largest weight per class</h3><div class="concepts">${Object.entries(top)
    .map(
      ([name, list]) =>
        `<div><b>${esc(name)}</b><ol>${list.map((c) => `<li>${esc(c.concept)} <span class="muted">(${c.weight.toFixed(3)})</span></li>`).join('')}</ol></div>`,
    )
    .join('')}</div>`;
}

const short = (s: string): string => (s.length > 26 ? `${s.slice(0, 25)}…` : s);
