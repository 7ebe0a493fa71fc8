/**
 * The ImageNet augmentation against torchvision 0.14 itself (Debian's python3-torchvision
 * with Pillow, through /usr/bin/python3): torch's recorded draws replayed through our
 * AugmentDraws must give torchvision's crop boxes, and our colour adjustments Pillow's bytes.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { before, describe, it } from 'node:test';

import {
  adjustBrightness, adjustContrast, adjustHue, adjustSaturation, type AugmentDraws, applyJitter, drawJitter,
  evaluationGeometry, randomDraws, randomResizedCropBox, roundHalfEven,
} from '../../src/data/index.js';
import { Random } from '../../src/tensor/random.js';

const SCRIPT = fileURLToPath(new URL('../../../test/data/torchvision_reference.py', import.meta.url));
const PYTHON = process.env.PCDARTS_PYTHON ?? '/usr/bin/python3';

/**
 * Every request of this file goes to one Python process (importing torch takes seconds):
 * `torchvision(request)` returns the answer to one that `ask` queued before `before()` ran.
 */
const queued: object[] = [];
let answers: unknown[] = [];
function ask(request: object): number {
  queued.push(request);
  return queued.length - 1;
}
function torchvision<T>(id: number): T {
  return answers[id] as T;
}


type Draw =
  | { kind: 'range'; low: number; high: number; value: number }
  | { kind: 'int'; n: number; value: number }
  | { kind: 'perm'; n: number; value: number[] }
  | { kind: 'uniform'; value: number };

/** Replays torch's recorded draws, checking that each is asked for with torch's arguments. */
function scripted(draws: Draw[]): AugmentDraws & { left(): number } {
  let next = 0;
  const take = <K extends Draw['kind']>(kind: K): Extract<Draw, { kind: K }> => {
    const draw = draws[next++];
    assert.ok(draw !== undefined, `draw ${next - 1} (${kind}) beyond torch's ${draws.length}`);
    assert.equal(draw.kind, kind, `draw ${next - 1}`);
    return draw as Extract<Draw, { kind: K }>;
  };
  return {
    uniform: () => take('uniform').value,
    uniformRange: (low, high) => {
      const d = take('range');
      // torch takes the bounds as doubles (scale, jitter ranges) or float32 tensors (log ratios).
      assert.equal(Math.fround(low), Math.fround(d.low), 'uniform_ low');
      assert.equal(Math.fround(high), Math.fround(d.high), 'uniform_ high');
      return d.value;
    },
    int: (n) => {
      const d = take('int');
      assert.equal(n, d.n, 'randint range');
      return d.value;
    },
    permutation: (n) => {
      const d = take('perm');
      assert.equal(n, d.n);
      return d.value;
    },
    left: () => draws.length - next,
  };
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}

function randomImage(width: number, height: number, seed: number): Uint8Array {
  const random = new Random(seed);
  const rgb = new Uint8Array(width * height * 3);
  // Smooth gradients plus noise plus flat grey and saturated patches: every HSV branch.
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = 3 * (y * width + x);
      if (x < 3) {
        rgb.fill(x * 100, o, o + 3);
      } else if (y < 2) {
        rgb[o] = 255; rgb[o + 1] = (x * 37) & 255; rgb[o + 2] = 0;
      } else {
        rgb[o] = random.int(256); rgb[o + 1] = (x * 9 + y * 3) & 255; rgb[o + 2] = random.int(256);
      }
    }
  }
  return rgb;
}


const RRC_CASES: [number, number, number][] = [];
for (const [w, h] of [[500, 375], [375, 500], [224, 224], [32, 20], [3, 3], [1, 1], [2000, 40], [40, 2000], [100, 75], [640, 427], [17, 300]]) {
  for (let seed = 0; seed < 12; seed++) RRC_CASES.push([w, h, seed]);
}
const RRC = ask({ op: 'rrc', cases: RRC_CASES });

const WIDTH = 23;
const HEIGHT = 17;
const RGB = randomImage(WIDTH, HEIGHT, 3);
const FACTORS: [string, number][] = [];
for (const f of [0, 0.6, 0.8123, 1, 1.2, 1.4, 2.7]) FACTORS.push(['brightness', f], ['contrast', f], ['saturation', f]);
for (const f of [-0.5, -0.2, -0.1234, -0.001, 0, 0.05, 0.1, 0.2, 0.3333, 0.5]) FACTORS.push(['hue', f]);
const JITTER = ask({ op: 'jitter', width: WIDTH, height: HEIGHT, rgb: base64(RGB), factors: FACTORS });
const SEEDS = Array.from({ length: 16 }, (_, i) => i);
const COLOR_JITTER = ask({ op: 'colorjitter', width: WIDTH, height: HEIGHT, rgb: base64(RGB), seeds: SEEDS });
const EVAL_CASES: [number, number, number][] = [];
for (const [w, h] of [[500, 375], [375, 500], [256, 256], [300, 1000], [1000, 301], [257, 999], [64, 64], [90, 73]]) {
  for (const size of [224, 64, 32, 16]) EVAL_CASES.push([w, h, size]);
}
const EVAL = ask({ op: 'eval', cases: EVAL_CASES });

before(() => {
  const out = execFileSync(PYTHON, [SCRIPT], { input: JSON.stringify({ op: 'many', requests: queued }), encoding: 'utf8', maxBuffer: 64 << 20 });
  answers = JSON.parse(out) as unknown[];
});

describe('RandomResizedCrop (torchvision get_params)', () => {
  it('gives torchvision\'s boxes from torch\'s own draws, tries and centre fallback included', () => {
    const cases = RRC_CASES;
    const { results } = torchvision<{ results: { draws: Draw[]; box: [number, number, number, number] }[] }>(RRC);
    let fallbacks = 0;
    results.forEach((result, c) => {
      const [w, h] = cases[c];
      const draws = scripted(result.draws);
      const box = randomResizedCropBox(w, h, draws);
      assert.deepEqual([box.top, box.left, box.height, box.width], result.box, `${w}x${h} seed ${cases[c][2]}`);
      assert.equal(draws.left(), 0, 'every torch draw used');
      if (result.draws.filter((d) => d.kind === 'int').length === 0) fallbacks++;
    });
    assert.ok(fallbacks >= 12, `the extreme sizes exercise the fallback (${fallbacks} cases)`);
  });

  it('stays inside the image and keeps the scale and ratio ranges with the run\'s generator', () => {
    const draws = randomDraws(new Random(5));
    for (let t = 0; t < 2000; t++) {
      const w = 1 + (t * 37) % 700;
      const h = 1 + (t * 53) % 500;
      const box = randomResizedCropBox(w, h, draws);
      assert.ok(box.top >= 0 && box.left >= 0 && box.top + box.height <= h && box.left + box.width <= w && box.width > 0 && box.height > 0);
    }
  });

  it('rounds like Python (halves to even)', () => {
    assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, 2.6].map(roundHalfEven), [0, 2, 2, -0, -2, 2, 3]);
  });
});

describe('ColorJitter (Pillow 9.4 via torchvision)', () => {
  const rgb = RGB;

  it('each adjustment gives Pillow\'s bytes', () => {
    const factors = FACTORS;
    const { results } = torchvision<{ results: string[] }>(JITTER);
    const fns: Record<string, (img: Uint8Array, factor: number) => void> = {
      brightness: adjustBrightness, contrast: adjustContrast, saturation: adjustSaturation, hue: adjustHue,
    };
    factors.forEach(([name, factor], i) => {
      const ours = rgb.slice();
      fns[name](ours, factor);
      const theirs = Buffer.from(results[i], 'base64');
      const differing = ours.reduce((n, v, k) => n + (v !== theirs[k] ? 1 : 0), 0);
      assert.equal(differing, 0, `${name}(${factor}): ${differing} of ${ours.length} bytes differ`);
    });
  });

  it('ColorJitter(0.4, 0.4, 0.4, 0.2) with torch\'s draws: same order, factors and bytes', () => {
    const seeds = SEEDS;
    const { results } = torchvision<{ results: { draws: Draw[]; rgb: string }[] }>(COLOR_JITTER);
    for (const [i, result] of results.entries()) {
      const draws = scripted(result.draws);
      const ours = rgb.slice();
      applyJitter(ours, drawJitter(draws));
      assert.equal(draws.left(), 0);
      assert.deepEqual(Buffer.from(ours), Buffer.from(result.rgb, 'base64'), `seed ${seeds[i]}`);
    }
  });
});

describe('evaluation geometry (Resize(size*256/224) + CenterCrop(size))', () => {
  it('matches torchvision\'s resized size and crop offsets', () => {
    const cases = EVAL_CASES;
    const { results } = torchvision<{ results: { resize: [number, number]; top: number; left: number }[] }>(EVAL);
    results.forEach((expected, i) => {
      const [w, h, size] = cases[i];
      const geometry = evaluationGeometry(w, h, size);
      assert.deepEqual([geometry.resizeWidth, geometry.resizeHeight], expected.resize, `${w}x${h} -> ${size}`);
      assert.deepEqual([geometry.crop.top, geometry.crop.left], [expected.top, expected.left], `${w}x${h} -> ${size}`);
    });
  });
});
