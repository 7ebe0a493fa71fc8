/**
 * Makes the bundled Fashion-MNIST subset (data/fashion-mnist-subset/, see its README.md)
 * from the full dataset, and prints the channel statistics of the full padded training
 * set that src/data/dataset.ts records as FASHION_MNIST_MEAN / FASHION_MNIST_STD.
 *
 * Selection (deterministic): one Random(SEED) drives everything, train split first, then
 * test. For each class 0..9 in order, the indices of that class in file order are permuted
 * with random.permutation and the first PER_CLASS of them taken; the selected indices
 * (class 0's, then class 1's, ...) are then shuffled with random.shuffle, because the search
 * trains weights on the first half of the training set and the architecture on the second
 * (spec section 6), so the file must not be sorted by class.
 *
 * scripts/ is outside tsconfig.json's `include`; compile and run from the repository root:
 *   npx tsc -p tsconfig.json
 *   npx tsc --target ES2022 --module NodeNext --moduleResolution NodeNext --strict \
 *     --skipLibCheck --types node --rootDir . --outDir dist scripts/make-bundled-subset.ts
 *   node dist/scripts/make-bundled-subset.js [SOURCE_DIR [OUT_DIR]]
 * SOURCE_DIR defaults to /usr/share/datasets/fashion-mnist (Debian: dataset-fashion-mnist),
 * OUT_DIR to data/fashion-mnist-subset.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import { encodeIdx, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC } from '../src/data/idx.js';
import { DEBIAN_FASHION_MNIST_DIR, readIdxFile } from '../src/data/load.js';
import { Random } from '../src/tensor/random.js';

const SEED = 2020;
const CLASSES = 10;
const SPLITS = [
  { prefix: 'train', perClass: 600 },
  { prefix: 't10k', perClass: 100 },
] as const;
const PADDING = 2;

function findFile(dir: string, name: string): string {
  const gzipped = join(dir, `${name}.gz`);
  return existsSync(gzipped) ? gzipped : join(dir, name);
}

function selectBalanced(labels: Uint8Array, perClass: number, random: Random): Int32Array {
  const selected: number[] = [];
  for (let c = 0; c < CLASSES; c++) {
    const members: number[] = [];
    labels.forEach((label, i) => { if (label === c) members.push(i); });
    if (members.length < perClass) throw new Error(`class ${c} has ${members.length} images, fewer than ${perClass}`);
    const permutation = random.permutation(members.length);
    for (let k = 0; k < perClass; k++) selected.push(members[permutation[k]]);
  }
  const order = Int32Array.from(selected);
  random.shuffle(order);
  return order;
}

/** Mean and population std (in [0, 1] units) of the pixels, with or without zero padding. */
function pixelStatistics(pixels: Uint8Array, count: number, rows: number, cols: number, padding: number): { mean: number; std: number } {
  let sum = 0;
  let sumSquares = 0;
  for (let i = 0; i < pixels.length; i++) {
    const v = pixels[i] / 255;
    sum += v;
    sumSquares += v * v;
  }
  const n = count * (rows + 2 * padding) * (cols + 2 * padding);
  const mean = sum / n;
  return { mean, std: Math.sqrt(sumSquares / n - mean * mean) };
}

function main(): void {
  const sourceDir = process.argv[2] ?? DEBIAN_FASHION_MNIST_DIR;
  const outDir = process.argv[3] ?? fileURLToPath(new URL('../../data/fashion-mnist-subset', import.meta.url));
  mkdirSync(outDir, { recursive: true });
  const random = new Random(SEED);

  for (const { prefix, perClass } of SPLITS) {
    const images = readIdxFile(findFile(sourceDir, `${prefix}-images-idx3-ubyte`), IDX_IMAGES_MAGIC);
    const labels = readIdxFile(findFile(sourceDir, `${prefix}-labels-idx1-ubyte`), IDX_LABELS_MAGIC);
    const [count, rows, cols] = images.dims;
    if (labels.dims[0] !== count) throw new Error(`${prefix}: ${count} images but ${labels.dims[0]} labels`);
    if (prefix === 'train') {
      const raw = pixelStatistics(images.data, count, rows, cols, 0);
      const padded = pixelStatistics(images.data, count, rows, cols, PADDING);
      console.log(`full training set, ${count} images: unpadded mean ${raw.mean.toFixed(8)} std ${raw.std.toFixed(8)}; `
        + `padded to ${rows + 2 * PADDING}x${cols + 2 * PADDING}: mean ${padded.mean.toFixed(8)} std ${padded.std.toFixed(8)}`);
    }

    const order = selectBalanced(labels.data, perClass, random);
    const imageBytes = rows * cols;
    const subsetImages = new Uint8Array(order.length * imageBytes);
    const subsetLabels = new Uint8Array(order.length);
    order.forEach((source, k) => {
      subsetImages.set(images.data.subarray(source * imageBytes, (source + 1) * imageBytes), k * imageBytes);
      subsetLabels[k] = labels.data[source];
    });
    // gzip output is deterministic: Node writes mtime 0 and a fixed OS byte.
    writeFileSync(join(outDir, `${prefix}-images-idx3-ubyte.gz`), gzipSync(encodeIdx([order.length, rows, cols], subsetImages), { level: 9 }));
    writeFileSync(join(outDir, `${prefix}-labels-idx1-ubyte.gz`), gzipSync(encodeIdx([order.length], subsetLabels), { level: 9 }));
    console.log(`${prefix}: ${order.length} images (${perClass} per class) of ${count}, first source indices ${Array.from(order.subarray(0, 5)).join(', ')}`);
  }
  console.log(`wrote ${outDir} (seed ${SEED})`);
}

main();
