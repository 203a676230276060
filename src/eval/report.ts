import type { ModeResult, SkippedMode } from './evaluate.js';

export interface ReportInput {
  dataset: string;
  classes: string[];
  results: ModeResult[];
  /** Modes the dataset could not run, with why. */
  skipped?: SkippedMode[];
  settings: Record<string, unknown>;
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const pct = (v: number): string => (Number.isNaN(v) ? '–' : `${v.toFixed(1)}%`);

/** One self-contained HTML page (inline CSS and SVG, no external URL) of an evaluation. */
export function renderReport(input: ReportInput): string {
  const { dataset, classes, results } = input;
  const table = `<table><tr><th>mode</th><th>val</th><th>test</th><th>gap</th><th>average</th><th>balanced (test)</th></tr>${results
    .map(
      (r) =>
        `<tr><td>${r.mode}</td><td>${pct(r.val_acc)}</td><td>${pct(r.test_acc)}</td><td>${pct(r.gap)}</td><td>${pct(r.average)}</td><td>${pct(r.balanced_acc)}</td></tr>`,
    )
    .join('')}</table>`;
  const sections = results
    .map(
      (r) => `<section><h2>${r.mode}</h2>
<div class="row">${confusionSvg(r.confusion.val, classes, 'val (in-distribution)')}${confusionSvg(r.confusion.test, classes, 'test (shifted)')}${recallSvg(r, classes)}</div>
${r.top_concepts ? conceptsHtml(r.top_concepts) : ''}</section>`,
    )
    .join('\n');
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
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:24px 0 8px;border-top:1px solid #ddd;padding-top:12px}
table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #eee;text-align:right}td:first-child,th:first-child{text-align:left}
.row figure{margin:0;max-width:100%}.row svg{max-width:100%;height:auto}.row{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}.muted{color:#777}
.skipped{color:#8a5a00}
.concepts{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:12px}.concepts ol{margin:4px 0;padding-left:20px}
</style></head><body>
<h1>${esc(dataset)}: ${classes.length} classes</h1>
<p class="muted">${settings}. Research use only; not for clinical diagnosis.</p>
${table}
${skipped}
${sections}
</body></html>
`;
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
