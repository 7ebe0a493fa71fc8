/**
 * A decode worker of the image pipeline (pipeline.ts): reads, decodes, augments and
 * normalises batch items into shared memory. Jobs arrive by message; the items of a job are
 * claimed one at a time from a shared counter (so workers share the load whatever the image
 * sizes), and completion and errors are reported through shared memory only, so the main
 * thread can wait with Atomics.wait and never needs its event loop.
 *
 * Control block of a job (Int32Array over its own SharedArrayBuffer):
 *   [0] next item to claim, [1] items finished, [2] error state (0 none, 1 being written,
 *   2 written), [3] index of the failed item, [4] byte length of the message, then the
 *   UTF-8 message from byte 32 on.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort } from 'node:worker_threads';

import sharp from 'sharp';

import { applyJitter, drawJitter, evaluationGeometry, normaliseInto, randomDraws, randomResizedCropBox } from './augment.js';
import { applyCutout, normalisationTable } from './batch.js';
import { cropResized, openImage, resizedCrop, verifyImage } from './image-decode.js';
import { prepareImage } from './prepare-image.js';
import { keyedRandom } from './keyed-random.js';
import { CONTROL_MESSAGE_OFFSET, type DecodeJob } from './pipeline-protocol.js';

// One libvips thread per worker: the pipeline's parallelism is its number of workers.
sharp.concurrency(1);
sharp.cache(false);

const queue: DecodeJob[] = [];
let running = false;
const tables = new Map<string, Float32Array>();

function tableFor(mean: readonly number[], std: readonly number[]): Float32Array {
  const key = `${mean.join(',')}/${std.join(',')}`;
  let table = tables.get(key);
  if (table === undefined) {
    table = normalisationTable(mean, std);
    tables.set(key, table);
  }
  return table;
}

function reportError(control: Int32Array, item: number, message: string): void {
  if (Atomics.compareExchange(control, 2, 0, 1) === 0) {
    const bytes = new TextEncoder().encode(message.replace(/\s+/g, ' ').trim());
    const area = new Uint8Array(control.buffer, CONTROL_MESSAGE_OFFSET);
    const length = Math.min(bytes.length, area.length);
    area.set(bytes.subarray(0, length));
    control[3] = item;
    control[4] = length;
    Atomics.store(control, 2, 2);
  }
}

async function processItem(job: DecodeJob, item: number): Promise<void> {
  const bytes = new Uint8Array(readFileSync(join(job.root, job.files[item])));
  if (job.mode === 'verify') {
    await verifyImage(bytes);
    return;
  }
  if (job.mode === 'prepare') {
    Atomics.store(new Int32Array(job.status!), item, await prepareImage(bytes, job.files[item], job.outRoot!, job.size, job.quality ?? 90));
    return;
  }
  const image = await openImage(bytes);
  const size = job.size;
  let rgb: Uint8Array;
  let flip = false;
  let cutoutAt: [number, number] | null = null;
  if (job.mode === 'train') {
    const key = job.keys![item];
    const random = randomDraws(keyedRandom(job.seed, job.stream, key[0], key[1]));
    const box = randomResizedCropBox(image.width, image.height, random);
    if (job.flip) flip = random.uniform() < 0.5;
    const jitter = job.jitter ? drawJitter(random, job.jitter) : null;
    if (job.cutout > 0) cutoutAt = [random.int(size), random.int(size)];
    rgb = await cropResized(image, box, size);
    if (jitter !== null) applyJitter(rgb, jitter);
  } else {
    const geometry = evaluationGeometry(image.width, image.height, size);
    rgb = await resizedCrop(image, geometry.resizeWidth, geometry.resizeHeight, geometry.crop);
  }
  const pixels = new Float32Array(job.pixels!, 0, job.files.length * 3 * size * size);
  normaliseInto(rgb, size, size, flip, tableFor(job.mean, job.std), pixels, item * 3 * size * size);
  if (cutoutAt !== null) applyCutout(pixels, item * 3 * size * size, 3, size, size, cutoutAt[0], cutoutAt[1], job.cutout);
}

async function runJob(job: DecodeJob): Promise<void> {
  const control = new Int32Array(job.control);
  const count = job.files.length;
  for (;;) {
    if (Atomics.load(control, 2) !== 0 && job.mode !== 'verify' && job.mode !== 'prepare') break; // the batch failed: stop early
    const item = Atomics.add(control, 0, 1);
    if (item >= count) break;
    try {
      await processItem(job, item);
    } catch (error) {
      if (job.mode === 'verify' || job.mode === 'prepare') {
        Atomics.store(new Int32Array(job.status!), item, 1);
      }
      reportError(control, item, error instanceof Error ? error.message : String(error));
    }
    Atomics.add(control, 1, 1);
    Atomics.notify(control, 1);
  }
}

async function drain(): Promise<void> {
  if (running) return;
  running = true;
  try {
    while (queue.length > 0) await runJob(queue.shift()!);
  } finally {
    running = false;
  }
}

parentPort!.on('message', (job: DecodeJob) => {
  queue.push(job);
  void drain();
});
