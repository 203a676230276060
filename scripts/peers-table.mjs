// Pure rendering of the speed tables from bench results (no file access): `npm run bench:peers` results
// (bench/results/peers-<host>.json, one per host: node, chromium) and the figures of the other benches, so
// scripts/render-tables.mjs can write them and test/peers.test.ts can check them.

const day = (iso) => (iso ? iso.slice(0, 10) : 'undated');
const seconds = (v) =>
  v === undefined || v === null ? '–' : v < 1 ? v.toFixed(3) : v < 10 ? v.toFixed(2) : v.toFixed(1);
const loadText = (load) =>
  load
    ? `${(load.start ?? []).slice(0, 1).map((l) => l.toFixed(1))} → ${(load.end ?? []).slice(0, 1).map((l) => l.toFixed(1))}`
    : '?';
const table = (head, rows) =>
  [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');

/** Per-image seconds for image cases (batch > 1), whole-call seconds otherwise; null when not measured. */
export function perCall(result, engineId, caseId) {
  const t = result.timings.find((x) => x.engine === engineId && x.case === caseId);
  const c = result.cases.find((x) => x.id === caseId);
  if (!t || t.medianS === null || t.medianS === undefined || !c) return null;
  return caseId.startsWith('image') ? t.medianS / c.batch : t.medianS;
}

const caseLabel = (c) => (c.id.startsWith('image') && c.batch > 1 ? `${c.label} (per image)` : c.label);

/**
 * One peers run: a row per case, a column per engine (median s, per image at batch > 1), then ours over each
 * other engine (bold where ours is faster), then the run's date, machine, flags, load, versions and placements.
 */
export function peersTable(result, file) {
  const others = result.engines.filter((e) => e.id !== 'whylesion');
  const head = [
    'case',
    ...result.engines.map((e) => `${e.label} s`),
    ...others.map((e) => `whylesion / ${e.label.replace(/ \(.*\)$/, '')}`),
  ];
  const rows = result.cases.map((c) => {
    const mine = perCall(result, 'whylesion', c.id);
    return [
      caseLabel(c),
      ...result.engines.map((e) => {
        const t = result.timings.find((x) => x.engine === e.id && x.case === c.id);
        const v = perCall(result, e.id, c.id);
        return v === null ? (t?.note?.startsWith('skipped') ? 'skipped¹' : '–') : `${seconds(v)}${t?.note ? '²' : ''}`;
      }),
      ...others.map((e) => {
        const theirs = perCall(result, e.id, c.id);
        if (mine === null || theirs === null) return '–';
        const ratio = mine / theirs;
        return ratio <= 1 ? `**${ratio.toFixed(2)}**` : ratio.toFixed(2);
      }),
    ];
  });
  const notes = [];
  for (const t of result.timings.filter((x) => x.note)) {
    const engine = result.engines.find((e) => e.id === t.engine)?.label ?? t.engine;
    const c = result.cases.find((x) => x.id === t.case);
    notes.push(`${t.note.startsWith('skipped') ? '¹' : '²'} ${engine}, ${c?.label ?? t.case}: ${t.note}.`);
  }
  const versions = others
    .filter((e) => e.version)
    .map((e) => `${e.label} ${e.version}`)
    .join(', ');
  const towerPlacement = (p) =>
    Object.entries(p ?? {})
      .map(([ep, { nodes, ops }]) => {
        const matmuls = Object.entries(ops)
          .filter(([op]) => /MatMul|Gemm/.test(op))
          .map(([op, n]) => `${op} ${n}`);
        return `${ep} ${nodes} nodes${Object.keys(ops).length === 0 ? ' (all)' : matmuls.length ? ` (${matmuls.join(', ')})` : ' (no MatMul)'}`;
      })
      .join(' + ');
  const placement = others
    .filter((e) => e.matmulProviders)
    .map(
      (e) =>
        `${e.label}: MatMul/Gemm on ${e.matmulProviders.join(', ') || '?'}${e.placement ? ` (image: ${towerPlacement(e.placement.image)}; text: ${towerPlacement(e.placement.text)})` : ''}`,
    )
    .join('; ');
  const agreement = result.agreement.length
    ? `every output agreed with ours before timing, lowest row cosine ${Math.min(...result.agreement.map((a) => a.minCosine)).toFixed(12)} (gate ≥ 0.9999)`
    : 'no agreement recorded';
  const adapters = result.engines
    .filter((e) => e.adapter)
    .map(
      (e) =>
        `${e.label}: ${e.adapter}${e.dawnWarnings?.length ? `; its Dawn logged "${e.dawnWarnings.join('" and "')}"` : ''}`,
    )
    .join('; ');
  const lp = result.llvmpipe
    ? `; LP_NUM_THREADS=${result.llvmpipe.LP_NUM_THREADS ?? 'unset'}, LP_NATIVE_VECTOR_WIDTH=${result.llvmpipe.LP_NATIVE_VECTOR_WIDTH ?? 'unset'}`
    : '';
  const lines = [
    `**${result.host}**: ${day(result.date)}, ${result.model?.description ?? 'ViT-L/14 f32 (synthetic weights)'}, median of ${result.rounds} alternating timed rounds after a warm-up each; ${result.machine.cpu} (${result.machine.cores} cores), CPU flags ${result.machine.cpuFlags}; load average ${loadText(result.loadAverage)}${lp}.`,
    '',
    table(head, rows),
    '',
    ...notes.map((n) => `- ${n}`),
    `- ${versions}; ${agreement}.`,
    `- Node placement (ONNX Runtime's verbose session log): ${placement}.`,
    `- Adapters: ${adapters}.`,
    '',
    `<sub>From \`bench/results/${file}\`.</sub>`,
  ];
  return lines.join('\n');
}

/**
 * Every figure the results hold, as { system, case, seconds, date, load, flags, file }: peers runs (each engine a
 * system, per host), bench:e2e (ours and PyTorch CPU), bench:browser (ours in Chromium). `files` maps a file name
 * to its parsed JSON.
 */
/** bench:browser's full ViT-L/14 f32 results (SwiftShader, or the lavapipe adapter), not its other runs. */
export const BROWSER_RESULT = /^browser-ViT-L-14-f32(-swiftshader|-lavapipe)?\.json$/;

/** A peers run of another model than the full ViT-L/14 (bench:peers-chromium's 2-block one) names it. */
const reducedModel = (r) => (r.model?.config && r.model.config !== 'ViT-L-14' ? `, ${r.model.config}` : '');

export function figures(files) {
  const out = [];
  for (const [file, r] of Object.entries(files)) {
    if (/^peers-.*\.json$/.test(file) && r.kind === 'peers') {
      for (const e of r.engines)
        for (const c of r.cases) {
          const v = perCall(r, e.id, c.id);
          if (v === null) continue;
          out.push({
            system: `${e.label}, ${r.host}${reducedModel(r)}`,
            case: caseLabel(c),
            seconds: v,
            date: r.date,
            load: loadText(r.loadAverage),
            flags: r.machine.cpuFlags,
            file,
          });
        }
    } else if (/^e2e-ViT-L-14-f32\.json$/.test(file)) {
      const load = { start: [r.loadAverage?.[0] ?? Number.NaN], end: [r.loadAverage?.at(-1) ?? Number.NaN] };
      for (const row of r.rows) {
        const name = row.case === 'image, batch 8 (per image)' ? 'image, batch 8 (per image)' : row.case;
        for (const [system, value] of [
          ['whylesion (WebGPU), node', row.engine],
          [`PyTorch CPU (${r.torchThreads ?? 2} threads), python`, row.torch],
        ])
          out.push({ system, case: name, seconds: value, date: r.date, load: loadText(load), flags: r.cpuFlags, file });
      }
    } else if (BROWSER_RESULT.test(file)) {
      const load = { start: [r.loadAverage?.[0] ?? Number.NaN], end: [r.loadAverage?.at(-1) ?? Number.NaN] };
      for (const [what, name] of [
        ['image tower, 1 image, warm', 'image, batch 1'],
        ['text tower, 3 prompts, warm', 'text, 3 prompts'],
      ]) {
        const row = r.rows.find((x) => x.what === what);
        if (row)
          out.push({
            // bench:browser's adapters (runs before --adapter existed were all SwiftShader).
            system: `whylesion (WebGPU), chromium, ${r.adapter === 'lavapipe' ? 'lavapipe via GLES' : 'SwiftShader'}`,
            case: name,
            seconds: row.seconds,
            date: r.date,
            load: loadText(load),
            flags: r.cpuFlags,
            file,
          });
      }
    } else if (file === 'history.json') {
      for (const f of r.figures) out.push({ ...f, file });
    }
  }
  return out;
}

/** Splits figures into the latest run per system and case, and the rest (history, newest first). */
export function latestAndHistory(all) {
  const latest = new Map();
  for (const f of all) {
    const key = `${f.system}\n${f.case}`;
    const have = latest.get(key);
    if (f.date && (!have || f.date > have.date)) latest.set(key, f);
  }
  const kept = new Set(latest.values());
  const history = all
    .filter((f) => !kept.has(f))
    .sort((a, b) => (b.date ?? '').localeCompare(a.date ?? '') || a.system.localeCompare(b.system));
  return { latest: [...kept], history };
}

const CASE_ORDER = ['image, batch 1', 'image, batch 8 (per image)', 'text, 3 prompts'];

/** Column order: ours in Node first, then the peers of its runs, PyTorch, then other hosts (browsers). */
function systemRank(system) {
  const order = [/^whylesion.*, node$/, /WebGPU EP.*, node$/, /CPU EP.*, node$/, /^PyTorch/, /^whylesion/];
  const i = order.findIndex((re) => re.test(system));
  return i < 0 ? order.length : i;
}

/**
 * The latest figure per system (columns) and case (rows); each cell names its run by a footnote letter. Where a
 * system's figure comes from the same run as ours in Node, a column gives ours over it (bold where ours is faster).
 */
export function latestTable(latest) {
  const systems = [...new Set(latest.map((f) => f.system))].sort((a, b) => systemRank(a) - systemRank(b));
  const ours = systems.find((s) => /^whylesion.*, node$/.test(s));
  const runs = [...new Set(latest.map((f) => `${f.file} ${f.date}`))];
  const mark = (f) => String.fromCharCode(97 + runs.indexOf(`${f.file} ${f.date}`));
  const cases = [...new Set(latest.map((f) => f.case))].sort(
    (a, b) => (CASE_ORDER.indexOf(a) + 1 || 99) - (CASE_ORDER.indexOf(b) + 1 || 99),
  );
  const find = (s, c) => latest.find((x) => x.system === s && x.case === c);
  const sameRun = (a, b) => a && b && a.file === b.file && a.date === b.date;
  const compared = systems.filter((s) => s !== ours && cases.some((c) => sameRun(find(ours, c), find(s, c))));
  const rows = cases.map((c) => [
    c,
    ...systems.map((s) => {
      const f = find(s, c);
      return f ? `${seconds(f.seconds)} s (${mark(f)})` : '–';
    }),
    ...compared.map((s) => {
      const mine = find(ours, c);
      const theirs = find(s, c);
      if (!sameRun(mine, theirs)) return '–';
      const ratio = mine.seconds / theirs.seconds;
      return ratio <= 1 ? `**${ratio.toFixed(2)}**` : ratio.toFixed(2);
    }),
  ]);
  const notes = runs.map((run) => {
    const f = latest.find((x) => `${x.file} ${x.date}` === run);
    return `(${mark(f)}) \`bench/results/${f.file}\`, ${day(f.date)}, load average ${f.load}; CPU flags ${f.flags ?? '?'}.`;
  });
  const head = [
    'case (ViT-L/14 f32, this 2-core machine)',
    ...systems,
    ...compared.map((s) => `whylesion ÷ ${s.replace(/, node$/, '')} (same run)`),
  ];
  notes.push('Load differs between runs: compare systems within one run letter; the ÷ columns do.');
  return `${table(head, rows)}\n\n${notes.map((n) => `- ${n}`).join('\n')}`;
}

export function historyTable(history) {
  if (history.length === 0) return 'No older figures.';
  return table(
    ['date', 'system', 'case', 's', 'load average', 'source'],
    history.map((f) => [
      day(f.date),
      f.system,
      f.case,
      seconds(f.seconds),
      f.load ?? '?',
      f.source ? `${f.source}` : `\`${f.file}\``,
    ]),
  );
}
