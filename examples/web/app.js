// The demo page: everything runs here, in the browser; no image is sent anywhere.
import * as whylesion from './whylesion.js';

const $ = (id) => document.getElementById(id);
const TOP_CONCEPTS = 5;
const cards = [];
let model;
let probe; // a trained probe picked by the user, optional
let concepts; // { questions, rows } for KnoBo's PubMed bottleneck, embedded once per model
let work = Promise.resolve(); // GPU work runs one job at a time, in order
const params = new URLSearchParams(location.search);

/** For scripts and tests: the library module and the loaded model. */
window.whylesion = { module: whylesion, model: undefined };

function setStatus(state, text) {
  $('status').dataset.state = state;
  $('status').textContent = text;
}

function queue(job) {
  work = work.then(job, job);
  return work;
}

const message = (error) =>
  error instanceof whylesion.UserError ? error.message : `Unexpected error: ${error?.message ?? error}`;

function showProgress(p) {
  const bar = $('load-progress');
  bar.hidden = false;
  if (p.stage === 'download') {
    bar.value = p.total ? p.loaded / p.total : 0;
    const total = p.total ? ` / ${whylesion.formatBytes(p.total)}` : '';
    setStatus('loading', `Fetching ${p.file}: ${whylesion.formatBytes(p.loaded)}${total}`);
  } else if (p.stage === 'weights') {
    bar.value = p.loaded / p.total;
    setStatus('loading', `Uploading weights to the GPU: tensor ${p.loaded} of ${p.total}`);
  }
  // 'compile' (GPU kernels) also comes later, at a first forward of a new batch size: the results show that.
}

async function load(source) {
  const started = performance.now();
  setStatus('loading', 'Loading the model…');
  try {
    model?.dispose();
    model = window.whylesion.model = undefined;
    concepts = undefined;
    // f16 matmul weights about halve GPU memory (ViT-L/14: 1.71 GB in f32) where the adapter can run them.
    const adapter = await navigator.gpu.requestAdapter();
    const dtype = params.get('dtype') ?? (adapter?.features.has('shader-f16') ? 'f16' : 'f32');
    const loaded = await whylesion.loadModel(source, { dtype, onProgress: showProgress });
    model = window.whylesion.model = loaded;
    const a = model.adapter;
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    $('adapter').textContent =
      `WebGPU adapter: ${[a.vendor, a.architecture, a.description].filter(Boolean).join(' ') || 'unnamed'}; ` +
      `weights ${model.dtype} on the GPU; embedding size ${model.embedDim}.`;
    setStatus('ready', `Model ready (loaded in ${seconds} s).`);
    $('load-progress').hidden = true;
    for (const card of cards) analyze(card);
  } catch (error) {
    setStatus('error', message(error));
  }
}

function labels() {
  return $('labels')
    .value.split(/\r?\n|,/)
    .map((l) => l.trim())
    .filter(Boolean);
}

function addImages(files) {
  for (const file of files) {
    if (!file.type.startsWith('image/') && !/\.(jpe?g|png|gif|bmp)$/i.test(file.name)) continue;
    const card = document.createElement('article');
    card.className = 'result';
    card.dataset.state = 'waiting';
    const img = document.createElement('img');
    img.src = URL.createObjectURL(file);
    img.alt = file.name;
    const body = document.createElement('div');
    body.innerHTML = '<h3></h3><div class="probs">Waiting for the model…</div>';
    body.querySelector('h3').textContent = file.name;
    card.append(img, body);
    $('results').prepend(card);
    const entry = { file, card, embedding: undefined };
    cards.push(entry);
    if (model) analyze(entry);
  }
  $('results-status').textContent = cards.length ? '' : 'Load a model and add a photo.';
}

function analyze(entry) {
  return queue(async () => {
    if (!model) return;
    const { card } = entry;
    card.dataset.state = 'working';
    try {
      // Raw rows, as open_clip's encode_image gives them: probes are trained on those.
      entry.embedding ??= (await model.encodeImage(entry.file))[0];
      const unit = whylesion.normalized(entry.embedding);
      const names = labels();
      const probs = names.length ? model.classify([unit], await model.encodeText(names, { normalize: true }))[0] : [];
      concepts ??= await embedConcepts();
      const top = concepts.questions
        .map((question, k) => ({ question, similarity: whylesion.dot(unit, concepts.rows[k]) }))
        .sort((a, b) => b.similarity - a.similarity)
        .slice(0, TOP_CONCEPTS);
      render(card, names, probs, top);
      if (probe) renderProbe(card, entry.embedding);
      card.dataset.state = 'done';
    } catch (error) {
      card.querySelector('.probs').textContent = message(error);
      card.dataset.state = 'error';
    }
  });
}

async function embedConcepts() {
  const questions = await whylesion.loadConcepts('PubMed');
  return { questions, rows: await model.encodeText(questions, { normalize: true }) };
}

function render(card, names, probs, top) {
  const box = card.querySelector('.probs');
  box.replaceChildren();
  const order = names.map((name, i) => ({ name, p: probs[i] })).sort((a, b) => b.p - a.p);
  for (const { name, p } of order) {
    const row = document.createElement('div');
    row.className = 'row';
    row.dataset.label = name;
    row.dataset.probability = String(p);
    row.innerHTML = '<span class="name"></span><span class="bar"><i></i></span><span class="num"></span>';
    row.querySelector('.name').textContent = name;
    row.querySelector('i').style.width = `${(p * 100).toFixed(1)}%`;
    row.querySelector('.num').textContent = `${(p * 100).toFixed(1)}%`;
    box.append(row);
  }
  const heading = document.createElement('p');
  heading.textContent = 'Closest clinical concept questions (KnoBo, PubMed):';
  const list = document.createElement('ol');
  list.className = 'concepts';
  for (const c of top) {
    const item = document.createElement('li');
    item.innerHTML = '<span></span> ';
    item.querySelector('span').textContent = c.similarity.toFixed(3);
    item.append(c.question);
    list.append(item);
  }
  box.append(heading, list);
}

/** The probe's class probabilities and, for a concept probe, the concepts that pushed toward its prediction. */
function renderProbe(card, embedding) {
  const { probabilities, predictions } = probe.predict([embedding]);
  const k = predictions[0];
  const box = document.createElement('div');
  box.className = 'probe';
  box.dataset.prediction = probe.classes[k];
  box.dataset.probability = String(probabilities[0][k]);
  const heading = document.createElement('p');
  heading.textContent = `Probe (${probe.mode}): ${probe.classes[k]}, ${(probabilities[0][k] * 100).toFixed(1)}%`;
  box.append(heading);
  if (probe.concepts) {
    const list = document.createElement('ol');
    list.className = 'contributions';
    for (const c of probe.contributions(embedding, k).slice(0, TOP_CONCEPTS)) {
      const item = document.createElement('li');
      item.dataset.contribution = String(c.contribution);
      item.innerHTML = '<span></span> ';
      item.querySelector('span').textContent = `${c.contribution >= 0 ? '+' : ''}${c.contribution.toFixed(3)}`;
      item.append(c.concept);
      list.append(item);
    }
    const why = document.createElement('p');
    why.textContent = `Concept contributions toward ${probe.classes[k]} (weight × similarity):`;
    box.append(why, list);
  }
  card.querySelector('.probs').append(box);
}

// ---- wiring ----

if (!navigator.gpu) {
  $('no-webgpu').hidden = false;
  $('no-webgpu').textContent =
    'This browser has no WebGPU, which the model needs. Use a recent Chrome or Edge ' +
    '(or Safari 26, Firefox 141 on Windows) with hardware acceleration on, and open the page over https or localhost.';
  $('load').disabled = true;
  // Nothing below can work: only the message stays (no model form, no photo cards waiting forever).
  for (const section of document.querySelectorAll('section')) section.hidden = true;
}

$('model-source').value = params.get('model') ?? 'hf-hub:yyupenn/whylesionclip';
$('model-form').addEventListener('submit', (event) => {
  event.preventDefault();
  load($('model-source').value.trim());
});
$('model-files').addEventListener('change', (event) => {
  if (event.target.files.length) load(event.target.files);
});
$('probe-file').addEventListener('change', async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  try {
    probe = whylesion.parseProbe(await file.text(), file.name);
    $('probe-status').dataset.state = 'ready';
    $('probe-status').textContent = `${probe.mode} probe over ${probe.classes.join(', ')}`;
    cards.forEach(analyze);
  } catch (error) {
    probe = undefined;
    $('probe-status').dataset.state = 'error';
    $('probe-status').textContent = message(error);
  }
});
$('images').addEventListener('change', (event) => addImages(event.target.files));
const drop = $('drop');
drop.addEventListener('dragover', (event) => {
  event.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  addImages(event.dataTransfer.files);
});
let relabel;
$('labels').addEventListener('input', () => {
  clearTimeout(relabel);
  relabel = setTimeout(() => cards.forEach(analyze), 400);
});
// A model named in the address (?model=URL) loads at once; the 1.71 GB default waits for a click.
if (params.has('model') && navigator.gpu) load(params.get('model'));
