// The model card's example (open_clip in Python) in TypeScript:
//   node dist/examples/model_card.js [MODEL] [IMAGE]
// MODEL defaults to hf-hub:yyupenn/whylesionclip; IMAGE to examples/lesion.png (a synthetic lesion-like picture).
import { loadModel } from 'whylesion';

const [modelId = 'hf-hub:yyupenn/whylesionclip', image = 'examples/lesion.png'] = process.argv.slice(2);
const model = await loadModel(modelId);
const imageFeatures = await model.encodeImage([image], { normalize: true });
const textFeatures = await model.encodeText(['dark brown', 'bleeding', 'irregular shape'], { normalize: true });
const textProbs = model.classify(imageFeatures, textFeatures); // (100 · image @ textᵀ).softmax(-1)
console.log('Label probs:', textProbs.map((row) => row.map((p) => Number(p.toFixed(4)))));
model.dispose();
