import { access, readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { bundledAsset } from '../assets.js';
import { UserError } from '../errors.js';
import { SUPPORTED_FORMATS } from '../image/index.js';
import { parsePlainPickle } from '../io/pickle.js';
import { SeededRandom } from './random.js';

export const SPLITS = ['train', 'val', 'test'] as const;
export type SplitName = (typeof SPLITS)[number];

export interface LabeledImage {
  path: string;
  label: number;
}

/** A dataset's classes and its train / val (in-distribution) / test (shifted) images. */
export interface EvalDataset {
  name: string;
  source: 'folder' | 'knobo';
  classes: string[];
  splits: Record<SplitName, LabeledImage[]>;
  /** Images the splits name that are absent under the images root (KnoBo splits only). */
  missing: string[];
}

const IMAGE_EXTENSIONS = /\.(jpe?g|png|bmp|gif|tiff?|webp)$/i;

/** The KnoBo datasets whose split pickles the package ships (assets/knobo/splits/). */
export async function knoboDatasetNames(): Promise<string[]> {
  return (await readdir(bundledAsset('knobo/splits'), { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

/**
 * An ImageFolder dataset: ROOT/{train,val,test}/<class>/<image>. Classes are train's folders, sorted; val
 * and test must hold the same classes, and no class folder may be empty.
 */
export async function readImageFolderDataset(root: string): Promise<EvalDataset> {
  const folders: Partial<Record<SplitName, Map<string, string[]>>> = {};
  for (const split of SPLITS) {
    const dir = join(root, split);
    const info = await stat(dir).catch(() => undefined);
    if (!info?.isDirectory())
      throw new UserError(
        `${root} has no ${split}/ folder; a dataset folder needs train/, val/ and test/, each with one folder per class.`,
      );
    const byClass = new Map<string, string[]>();
    for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const classDir = join(dir, entry.name);
      if (!(await stat(classDir)).isDirectory()) continue;
      const images = (await readdir(classDir))
        .filter((f) => IMAGE_EXTENSIONS.test(f))
        .sort()
        .map((f) => join(classDir, f));
      if (images.length === 0)
        throw new UserError(
          `The class folder ${classDir} has no images (${SUPPORTED_FORMATS}); add images or remove the folder.`,
        );
      byClass.set(entry.name, images);
    }
    if (byClass.size === 0)
      throw new UserError(`${dir} has no class folders; put each class's images in ${dir}/<class>/.`);
    folders[split] = byClass;
  }
  const classes = [...folders.train!.keys()];
  return {
    name: root,
    source: 'folder',
    classes,
    splits: labelSplits(root, classes, folders as Record<SplitName, Map<string, string[]>>),
    missing: [],
  };
}

/**
 * One of KnoBo's datasets (HAM10000, ...) from the split pickles the package ships, with image paths under
 * `imagesRoot`. Images the splits name but the root lacks are listed in `missing` and left out.
 */
export async function readKnoboDataset(name: string, imagesRoot: string): Promise<EvalDataset> {
  const known = await knoboDatasetNames();
  const dataset = known.find((k) => k.toLowerCase() === name.toLowerCase());
  if (!dataset) throw new UserError(`${name} is neither a folder nor a KnoBo dataset (${known.join(', ')}).`);
  if (!(await stat(imagesRoot).catch(() => undefined))?.isDirectory()) {
    throw new UserError(
      `--images ${imagesRoot} is not a folder; point it at the datasets root the KnoBo splits' paths start from (e.g. the folder holding ${dataset}/).`,
    );
  }
  const perSplit: Partial<Record<SplitName, Map<string, string[]>>> = {};
  for (const split of SPLITS)
    perSplit[split] = await readSplitPickle(bundledAsset(`knobo/splits/${dataset}/class2images_${split}.p`));
  const classes = [...perSplit.train!.keys()];
  const missing: string[] = [];
  for (const split of SPLITS) {
    for (const [label, paths] of perSplit[split]!) {
      const present = new Set<string>();
      await Promise.all(
        paths.map(async (p) => {
          const full = join(imagesRoot, p);
          if (
            await access(full).then(
              () => true,
              () => false,
            )
          )
            present.add(full);
          else missing.push(full);
        }),
      );
      perSplit[split]!.set(
        label,
        paths.map((p) => join(imagesRoot, p)).filter((p) => present.has(p)),
      );
    }
  }
  return {
    name: dataset,
    source: 'knobo',
    classes,
    splits: labelSplits(dataset, classes, perSplit as Record<SplitName, Map<string, string[]>>, true),
    missing: missing.sort(),
  };
}

/** KnoBo's class2images_<split>.p: a pickled dict class name -> list of image paths. */
export async function readSplitPickle(path: string): Promise<Map<string, string[]>> {
  const bytes = await readFile(path).catch((cause: unknown) => {
    throw new UserError(`Cannot read the split file ${path}; reinstall whylesion or check the path.`, { cause });
  });
  const data = parsePlainPickle(bytes, `The split file ${path}`);
  if (
    !(data instanceof Map) ||
    [...data.values()].some((v) => !Array.isArray(v) || v.some((p) => typeof p !== 'string'))
  ) {
    throw new UserError(
      `The split file ${path} does not hold a dict of class name -> list of image paths; use KnoBo's class2images_<split>.p.`,
    );
  }
  // KnoBo's Melanoma splits spell the class "maliganant"; its prompts and priors also know it as "malignant".
  return new Map([...data].map(([label, paths]) => [label === 'maliganant' ? 'malignant' : label, paths as string[]]));
}

function labelSplits(
  name: string,
  classes: string[],
  perSplit: Record<SplitName, Map<string, string[]>>,
  allowEmpty = false,
): Record<SplitName, LabeledImage[]> {
  const result = {} as Record<SplitName, LabeledImage[]>;
  for (const split of SPLITS) {
    const byClass = perSplit[split];
    const lacking = classes.filter((c) => !byClass.has(c) || (!allowEmpty && byClass.get(c)!.length === 0));
    if (lacking.length > 0)
      throw new UserError(
        `${name}'s ${split} split has no images of class ${lacking.map((c) => `'${c}'`).join(', ')}; every class of train needs images in val and test.`,
      );
    const extra = [...byClass.keys()].filter((c) => !classes.includes(c));
    if (extra.length > 0)
      throw new UserError(
        `${name}'s ${split} split has class ${extra.map((c) => `'${c}'`).join(', ')}, which train lacks; give it training images or remove it.`,
      );
    result[split] = classes.flatMap((c, label) => byClass.get(c)!.map((path) => ({ path, label })));
  }
  return result;
}

/** KnoBo's few-shot protocol: `shots` training images per class (all of a smaller class), drawn with the seed. */
export function sampleShots(
  images: readonly LabeledImage[],
  classes: number,
  shots: number,
  seed: number,
): LabeledImage[] {
  const random = new SeededRandom(seed);
  return Array.from({ length: classes }, (_, k) =>
    random.sample(
      images.filter((im) => im.label === k),
      shots,
    ),
  ).flat();
}
