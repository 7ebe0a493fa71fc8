/**
 * `npm run bench -- data DIR`: images/s of decode + training augmentation (RandomResizedCrop,
 * flip; --jitter adds ColorJitter) at --size (224) from an image folder, ours (the worker-thread
 * pipeline, FolderBatchSource) against torchvision's ImageFolder + DataLoader with PIL on the
 * same folder and the same number of workers (1 and every core), in fresh processes one after
 * the other, with the ratio. --search also runs a short search on DIR at --image-size 64 and
 * reports the mean data wait per step against the mean step time (target <= 2 %).
 *
 * --generate N writes N synthetic photos (500x375 JPEGs, ImageNet's typical size, in 10
 * classes) into DIR first, when you have no folder at hand.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import {
  availableCores, defaultPython, detectPytorch, formatRatio, formatTable, LOAD_REMINDER, loadWarning, machineLine, median,
  parsePositiveInt, runAsWorker, runJsonChild,
} from './harness.js';

export const description = 'images/s of image-folder decode + training augmentation at 224 (1 worker, all cores) vs torchvision ImageFolder + DataLoader; --search: data wait of a search at 64';

interface DataWorkerConfig {
  dir: string;
  size: number;
  workers: number;
  batch: number;
  images: number;
  jitter: boolean;
}

interface Rate { images: number; seconds: number; images_per_s: number }

// ---------------------------------------------------------------------------------------
// Our side (worker process): the pipeline as a run uses it, with nothing else computing.

async function worker(config: DataWorkerConfig): Promise<void> {
  const { FolderBatchSource, KeyedBatchSampler, loadImageFolder, closeDecodePool } = await import('../src/data/index.js');
  const dataset = loadImageFolder({ name: 'imagefolder', dir: config.dir, split: 'train', imageSize: config.size });
  const sampler = new KeyedBatchSampler(Int32Array.from({ length: dataset.count }, (_, i) => i), config.batch, 0, 'train');
  const source = FolderBatchSource.training(dataset, sampler, {
    kind: 'train', flip: true, jitter: config.jitter ? [0.4, 0.4, 0.4, 0.2] : null, cutout: 0,
  }, { workers: config.workers, prefetch: 2 });
  const buffer = new Float32Array(config.batch * 3 * config.size * config.size);
  const take = (): number => source.next((n) => buffer.subarray(0, n * 3 * config.size * config.size)).indices.length;
  take(); // warm-up: workers start, sharp loads
  let done = 0;
  const started = performance.now();
  while (done < config.images) done += take();
  const seconds = (performance.now() - started) / 1000;
  source.close();
  await closeDecodePool();
  const result: Rate = { images: done, seconds, images_per_s: done / seconds };
  console.log(JSON.stringify(result));
}

// ---------------------------------------------------------------------------------------
// Synthetic photos

async function generate(dir: string, count: number): Promise<void> {
  const sharp = (await import('sharp')).default;
  const { Random } = await import('../src/tensor/random.js');
  const random = new Random(1);
  const width = 500;
  const height = 375;
  for (let i = 0; i < count; i++) {
    const cls = `class_${String(i % 10).padStart(2, '0')}`;
    mkdirSync(join(dir, 'train', cls), { recursive: true });
    // Smooth shapes plus grain: JPEG sizes and decode costs like photos', not like flat colour.
    const rgb = Buffer.alloc(width * height * 3);
    const [a, b, c] = [random.uniform() * 9, random.uniform() * 7, random.uniform() * 5];
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const o = 3 * (y * width + x);
        const grain = random.int(24);
        rgb[o] = 128 + 100 * Math.sin(a * x / width + c * y / height) + grain;
        rgb[o + 1] = 128 + 100 * Math.cos(b * y / height + a * x / width) + grain;
        rgb[o + 2] = 128 + 100 * Math.sin((x + y) * c / (width + height)) + grain;
      }
    }
    writeFileSync(join(dir, 'train', cls, `img_${String(i).padStart(5, '0')}.JPEG`),
      await sharp(rgb, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer());
  }
}

// ---------------------------------------------------------------------------------------
// The data wait of a search

async function searchWait(dir: string, args: { imageSize: number; batch: number; steps: number }): Promise<{ meanWaitMs: number; meanStepMs: number; medianWaitMs: number; medianStepMs: number; steps: number }> {
  const out = mkdtempSync(join(tmpdir(), 'pcdarts-bench-data-'));
  const run = join(out, 'run');
  const main = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
  // Weight and architecture halves of steps + 1 batches each (the first step is not counted).
  const { loadImageFolder } = await import('../src/data/index.js');
  const available = loadImageFolder({ name: 'imagefolder', dir, split: 'train', imageSize: args.imageSize }).count;
  const limit = Math.min(available, args.batch * (args.steps + 1) * 2);
  if (limit < 4 * args.batch) throw new Error(`--search: ${dir} has ${available} training images, too few for 2 steps of batch ${args.batch} on both halves`);
  try {
    const child = spawnSync(process.execPath, [
      main, 'search', '--dataset', 'imagefolder', '--data', dir, '--image-size', String(args.imageSize), '--batch-size', String(args.batch),
      '--epochs', '1', '--warmup-epochs', '0', '--limit-train', String(limit), '--out', run,
    ], { env: { ...process.env, PCDARTS_BACKEND: 'wasm' }, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
    if (child.status !== 0) throw new Error(`the search failed (exit ${child.status}): ${child.stderr}`);
    const records = readFileSync(join(run, 'log.jsonl'), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, number | string>);
    const steps = records.filter((r) => r.type === 'step').slice(1); // the first step pays for the workers' start
    const waits = steps.map((s) => s.data_wait_ms as number);
    const stepMs = steps.map((s) => (1000 * args.batch) / (s.images_per_s as number));
    const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
    return { meanWaitMs: mean(waits), meanStepMs: mean(stepMs), medianWaitMs: median(waits), medianStepMs: median(stepMs), steps: steps.length };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------
// Parent

const USAGE = `usage: npm run bench -- data DIR [options]

  DIR                 an image folder (DIR/train/<class>/<image>)
  --generate N        first write N synthetic 500x375 JPEG photos into DIR (DIR must not exist)
  --size N            crop side (default 224)
  --images N          images timed per measurement (default 512)
  --batch N           batch size (default 32)
  --workers LIST      worker counts, e.g. 1,2 (default: 1 and all cores)
  --jitter            include ColorJitter(0.4, 0.4, 0.4, 0.2) (retraining's augmentation)
  --search            also measure the data wait of a search at --image-size 64 (target <= 2 % of a step)
  --search-steps N    timed search steps (default 12)
  --python PATH       interpreter with torchvision (default: $PCDARTS_PYTHON or /usr/bin/python3)
  --no-pytorch        skip torchvision`;

export async function run(argv: readonly string[]): Promise<void> {
  let dir: string | undefined;
  let generateCount = 0;
  let size = 224;
  let images = 512;
  let batch = 32;
  let workerCounts = [...new Set([1, availableCores()])];
  let jitter = false;
  let search = false;
  let searchSteps = 12;
  let python = defaultPython();
  let pytorch = true;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => argv[++i];
    if (arg === '--help' || arg === '-h') { console.log(USAGE); return; }
    else if (arg === '--generate') generateCount = parsePositiveInt(arg, value());
    else if (arg === '--size') size = parsePositiveInt(arg, value());
    else if (arg === '--images') images = parsePositiveInt(arg, value());
    else if (arg === '--batch') batch = parsePositiveInt(arg, value());
    else if (arg === '--workers') workerCounts = value().split(',').map((w) => parsePositiveInt('--workers', w));
    else if (arg === '--jitter') jitter = true;
    else if (arg === '--search') search = true;
    else if (arg === '--search-steps') searchSteps = parsePositiveInt(arg, value());
    else if (arg === '--python') python = value();
    else if (arg === '--no-pytorch') pytorch = false;
    else if (!arg.startsWith('--') && dir === undefined) dir = arg;
    else throw new Error(`unknown option '${arg}'\n\n${USAGE}`);
  }
  if (dir === undefined) throw new Error(`an image folder is required\n\n${USAGE}`);
  if (generateCount > 0) {
    if (existsSync(dir)) throw new Error(`--generate: ${dir} exists; give a new folder`);
    console.log(`writing ${generateCount} synthetic 500x375 JPEGs into ${dir} ...`);
    await generate(dir, generateCount);
  }
  const torch = pytorch ? detectPytorch(python) : null;
  console.log(machineLine(torch ?? (pytorch ? 'not found' : 'skipped')));
  const warning = await loadWarning();
  if (warning !== null) console.log(warning);
  console.log(`data: ${dir}, RandomResizedCrop(${size}) + flip${jitter ? ' + ColorJitter' : ''} + normalise, batches of ${batch}, ${images} images timed\n`);

  const script = fileURLToPath(new URL('../../bench/pytorch/data.py', import.meta.url));
  const self = fileURLToPath(import.meta.url);
  const rows: string[][] = [];
  for (const workers of workerCounts) {
    const config: DataWorkerConfig = { dir, size, workers, batch, images, jitter };
    const ours = await runJsonChild<Rate>(process.execPath, [self, '--worker', JSON.stringify(config)]);
    const theirs = torch === null ? null : await runJsonChild<Rate>(python, [script, JSON.stringify(config)]);
    rows.push([
      String(workers), ours.images_per_s.toFixed(1), (ours.images_per_s / workers).toFixed(1),
      theirs === null ? '-' : theirs.images_per_s.toFixed(1), theirs === null ? '-' : (theirs.images_per_s / workers).toFixed(1),
      formatRatio(ours.images_per_s, theirs?.images_per_s),
    ]);
    console.log(`  ${workers} worker(s): ours ${ours.images_per_s.toFixed(1)} img/s, torchvision ${theirs === null ? '-' : theirs.images_per_s.toFixed(1)} img/s`);
  }
  console.log(`\n${formatTable(['workers', 'ours img/s', 'per worker', 'torchvision img/s', 'per worker', 'ours/torchvision'], rows)}`);
  console.log('target: ours/torchvision >= 1.50x at the same worker count (per core)');

  if (search) {
    const result = await searchWait(dir, { imageSize: 64, batch: 32, steps: searchSteps });
    const share = (100 * result.meanWaitMs) / result.meanStepMs;
    console.log(`\nsearch at --image-size 64, batch 32, K 4 C 16 L 8 (defaults), architecture steps on, ${result.steps} steps after the first:`);
    console.log(`  mean data wait ${result.meanWaitMs.toFixed(2)} ms per step (median ${result.medianWaitMs.toFixed(2)}), mean step ${result.meanStepMs.toFixed(0)} ms (median ${result.medianStepMs.toFixed(0)}): ${share.toFixed(2)} % (target <= 2 %)`);
  }
  console.log(`\n${LOAD_REMINDER}`);
}

runAsWorker<DataWorkerConfig>(import.meta.url, 'data', worker, (error) => {
  console.error(error instanceof Error ? error.stack ?? error.message : String(error));
  process.exitCode = 1;
});
