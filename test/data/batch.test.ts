import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  type Augmentation, batchImageShape, CIFAR10_MEAN, CIFAR10_STD, type Dataset, fillBatch, fillLabels,
  NO_AUGMENTATION, normalisationTable, standardAugmentation,
} from '../../src/data/index.js';
import { Random } from '../../src/tensor/random.js';

/** A hand-made dataset: pixel (n, c, y, x) = (n * 37 + c * 11 + y * 5 + x * 3 + 1) % 256. */
function handMade(count: number, channels: number, size: number, mean: number[], std: number[]): Dataset {
  const images = new Uint8Array(count * channels * size * size);
  for (let n = 0; n < count; n++) {
    for (let c = 0; c < channels; c++) {
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) images[((n * channels + c) * size + y) * size + x] = (n * 37 + c * 11 + y * 5 + x * 3 + 1) % 256;
      }
    }
  }
  return {
    name: 'hand-made', split: 'train', images, labels: Int32Array.from({ length: count }, (_, n) => n % 10), count,
    channels, height: size, width: size, classes: 10, classNames: [], mean, std,
  };
}

const normalise = (pixel: number, mean: number, std: number): number => (pixel / 255 - mean) / std;

describe('normalisation', () => {
  it('maps pixel p of channel c to (p / 255 - mean[c]) / std[c] in float32', () => {
    const table = normalisationTable(CIFAR10_MEAN, CIFAR10_STD);
    for (let c = 0; c < 3; c++) {
      for (const p of [0, 1, 128, 254, 255]) {
        const value = table[c * 256 + p];
        assert.ok(Math.abs(value - normalise(p, CIFAR10_MEAN[c], CIFAR10_STD[c])) < 1e-6, `c ${c} p ${p}`);
        assert.equal(value, Math.fround(value));
      }
    }
    // Pins: red 0 -> -0.49139968 / 0.24703233, red 255 -> (1 - 0.49139968) / 0.24703233.
    assert.ok(Math.abs(table[0] - -1.98921296) < 1e-6);
    assert.ok(Math.abs(table[255] - 2.05884147) < 1e-6);
  });

  it('writes normalised NCHW without augmentation and draws nothing', () => {
    const dataset = handMade(3, 3, 8, [0.5, 0.4, 0.3], [0.25, 0.2, 0.1]);
    const random = new Random(1);
    const before = JSON.stringify(random.getState());
    const out = new Float32Array(2 * 3 * 64);
    fillBatch(dataset, [2, 0], out, NO_AUGMENTATION, random);
    assert.equal(JSON.stringify(random.getState()), before);
    for (const [b, n] of [[0, 2], [1, 0]]) {
      for (let i = 0; i < 3 * 64; i++) {
        const c = Math.floor(i / 64);
        const expected = normalise(dataset.images[n * 192 + i], dataset.mean[c], dataset.std[c]);
        assert.ok(Math.abs(out[b * 192 + i] - expected) < 1e-5);
      }
    }
    const labels = new Int32Array(2);
    fillLabels(dataset, [2, 0], labels);
    assert.deepEqual(Array.from(labels), [2, 0]);
  });

  it('rejects an output buffer of the wrong size and an index outside the dataset', () => {
    const dataset = handMade(2, 1, 4, [0], [1]);
    assert.throws(() => fillBatch(dataset, [0], new Float32Array(15), NO_AUGMENTATION, new Random(0)), /expected 1 x 1x4x4 = 16/);
    assert.throws(() => fillBatch(dataset, [2], new Float32Array(16), NO_AUGMENTATION, new Random(0)), /batch index 2/);
  });
});

/** The reference: pad with zero pixels, crop at (top, left), maybe flip, then normalise. */
function expectedImage(
  dataset: Dataset, n: number, size: number, padding: number, top: number, left: number, flipped: boolean,
): number[] {
  const { channels, height, width } = dataset;
  const result: number[] = [];
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const cx = flipped ? size - 1 - x : x; // flip the cropped image
        const py = top + y - padding;
        const px = left + cx - padding;
        const inside = py >= 0 && py < height && px >= 0 && px < width;
        const pixel = inside ? dataset.images[((n * channels + c) * height + py) * width + px] : 0;
        result.push(normalise(pixel, dataset.mean[c], dataset.std[c]));
      }
    }
  }
  return result;
}

describe('random crop and flip', () => {
  for (const [size, imageSize, padding] of [[32, 32, 4], [6, 8, 3]]) {
    it(`crops ${size}x${size} from ${imageSize}x${imageSize} padded by ${padding}, flips, in the documented draw order`, () => {
      const dataset = handMade(4, 3, imageSize, [0.5, 0.4, 0.3], [0.25, 0.2, 0.1]);
      const augment: Augmentation = { crop: { size, padding }, flip: true, cutout: 0 };
      assert.deepEqual(batchImageShape(dataset, augment), [3, size, size]);
      const flips = new Set<boolean>();
      const padsSeen = { inside: false, padded: false };
      for (let seed = 0; seed < 12; seed++) {
        const batch = [3, 1, 0];
        const out = new Float32Array(batch.length * 3 * size * size);
        fillBatch(dataset, batch, out, augment, new Random(seed));
        const replay = new Random(seed);
        batch.forEach((n, b) => {
          const range = imageSize + 2 * padding - size + 1;
          const top = replay.int(range);
          const left = replay.int(range);
          const flipped = replay.uniform() < 0.5;
          flips.add(flipped);
          if (top < padding || left < padding) padsSeen.padded = true; else padsSeen.inside = true;
          const expected = expectedImage(dataset, n, size, padding, top, left, flipped);
          const actual = out.subarray(b * expected.length, (b + 1) * expected.length);
          expected.forEach((v, i) => {
            if (Math.abs(actual[i] - v) > 1e-5) assert.fail(`seed ${seed} image ${b} value ${i}: ${actual[i]} != ${v}`);
          });
        });
      }
      assert.deepEqual(flips, new Set([true, false]), 'both flip branches exercised');
      assert.ok(padsSeen.padded && padsSeen.inside);
    });
  }

  it('fills padding with the normalised zero pixel -mean/std', () => {
    const dataset = handMade(1, 1, 8, [0.4], [0.2]);
    // Crop 16 from 8 padded by 4: the whole padded image, so the border 4 pixels are padding.
    const out = new Float32Array(16 * 16);
    fillBatch(dataset, [0], out, { crop: { size: 16, padding: 4 }, flip: false, cutout: 0 }, new Random(0));
    assert.ok(Math.abs(out[0] - -2) < 1e-6);
    assert.ok(Math.abs(out[3 * 16 + 15] - -2) < 1e-6);
    assert.ok(Math.abs(out[4 * 16 + 4] - normalise(dataset.images[0], 0.4, 0.2)) < 1e-6);
  });
});

describe('cutout', () => {
  it('zeroes the clipped square of side L around the drawn centre, on every channel', () => {
    const size = 32;
    const dataset = handMade(2, 3, size, [0, 0, 0], [1, 1, 1]);
    dataset.images.fill(255); // every value 1 after normalisation
    const augment: Augmentation = { crop: null, flip: false, cutout: 16 };
    let clipped = 0;
    for (let seed = 0; seed < 40; seed++) {
      const out = new Float32Array(2 * 3 * size * size);
      fillBatch(dataset, [0, 1], out, augment, new Random(seed));
      const replay = new Random(seed);
      for (let b = 0; b < 2; b++) {
        const cy = replay.int(size);
        const cx = replay.int(size);
        const y1 = Math.max(0, cy - 8);
        const y2 = Math.min(size, cy + 8);
        const x1 = Math.max(0, cx - 8);
        const x2 = Math.min(size, cx + 8);
        const area = (y2 - y1) * (x2 - x1);
        if (area < 256) clipped++;
        for (let c = 0; c < 3; c++) {
          let zeros = 0;
          for (let y = 0; y < size; y++) {
            for (let x = 0; x < size; x++) {
              const value = out[((b * 3 + c) * size + y) * size + x];
              const inSquare = y >= y1 && y < y2 && x >= x1 && x < x2;
              assert.equal(value, inSquare ? 0 : 1);
              if (value === 0) zeros++;
            }
          }
          assert.equal(zeros, area);
          assert.ok(zeros <= 16 * 16 && zeros >= 8 * 8);
        }
      }
    }
    assert.ok(clipped > 0, 'some squares clipped at the border');
  });

  it('comes after crop and flip in the draw order', () => {
    const dataset = handMade(1, 1, 32, [0.5], [0.5]);
    const augment = standardAugmentation(16);
    const out = new Float32Array(32 * 32);
    fillBatch(dataset, [0], out, augment, new Random(21));
    const replay = new Random(21);
    const top = replay.int(9);
    const left = replay.int(9);
    const flipped = replay.uniform() < 0.5;
    const cy = replay.int(32);
    const cx = replay.int(32);
    const expected = expectedImage(dataset, 0, 32, 4, top, left, flipped);
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 32; x++) {
        const inSquare = y >= cy - 8 && y < cy + 8 && x >= cx - 8 && x < cx + 8;
        const want = inSquare ? 0 : expected[y * 32 + x];
        assert.ok(Math.abs(out[y * 32 + x] - want) < 1e-5, `(${y}, ${x})`);
      }
    }
  });
});
