/**
 * Scratch timing of the wasm kernels on the DARTS search shape [64, 16, 32, 32].
 * Not a test: `node dist/bench/wasm-kernels-scratch.js [threads...]` prints the best of 30 runs in ms.
 */
import { makeConvGeometry, makePoolGeometry, type KernelBackend } from '../src/kernels/backend.js';
import { WasmBackend } from '../src/kernels/wasm/backend.js';

const N = 64;
const C = 16;
const H = 32;
const W = 32;
const numel = N * C * H * W;

function random(be: KernelBackend, n: number, seed: number): Float32Array {
  const a = be.alloc(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}

/** Fastest of `reps` runs: the machine is shared, and the minimum is the least disturbed. */
function best(fn: () => void, reps: number): number {
  for (let i = 0; i < 3; i++) fn();
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    fn();
    best = Math.min(best, performance.now() - t);
  }
  return best;
}

function benchmark(threads: number): void {
  const be = new WasmBackend({ threads });
  const dw = makeConvGeometry({ batch: N, inChannels: C, inH: H, inW: W, outChannels: C, kernel: 3, padding: 1, groups: C });
  const pw = makeConvGeometry({ batch: N, inChannels: C, inH: H, inW: W, outChannels: C, kernel: 1 });
  const dense = makeConvGeometry({ batch: N, inChannels: C, inH: H, inW: W, outChannels: C, kernel: 3, padding: 1 });
  const bn = { batch: N, channels: C, spatial: H * W };
  const x = random(be, numel, 1);
  const gy = random(be, numel, 2);
  const wDw = random(be, C * 9, 3);
  const wPw = random(be, C * C, 4);
  const wDense = random(be, C * C * 9, 5);
  const gamma = random(be, C, 6);
  const beta = random(be, C, 7);
  const gwDw = be.alloc(C * 9);
  const gwPw = be.alloc(C * C);
  const gwDense = be.alloc(C * C * 9);
  const mean = be.alloc(C);
  const inv = be.alloc(C);
  const gg = be.alloc(C);
  const gb = be.alloc(C);
  // Activations of the sep_conv block: a0 = relu(x), a1 = dw(a0), a2 = pw(a1), a3 = bn(a2),
  // a4 = relu(a3), a5 = dw(a4), a6 = pw(a5), a7 = bn(a6).
  const a = Array.from({ length: 8 }, () => be.alloc(numel));
  const g1 = be.alloc(numel);
  const g2 = be.alloc(numel);
  const stats = [[be.alloc(C), be.alloc(C)], [be.alloc(C), be.alloc(C)]];
  const reps = 30;
  const results: Record<string, number> = {};

  results['relu fwd'] = best(() => be.relu(x, a[0], numel), reps);
  results['dw3x3 fwd'] = best(() => be.conv2d(x, wDw, a[1], dw), reps);
  results['dw3x3 bwd (gx+gw)'] = best(() => {
    be.conv2dGradInput(gy, wDw, g1, dw);
    be.conv2dGradWeight(x, gy, gwDw, dw);
  }, reps);
  results['1x1 fwd'] = best(() => be.conv2d(x, wPw, a[2], pw), reps);
  results['1x1 fwd+bwd'] = best(() => {
    be.conv2d(x, wPw, a[2], pw);
    be.conv2dGradInput(gy, wPw, g1, pw);
    be.conv2dGradWeight(x, gy, gwPw, pw);
  }, reps);
  results['bn fwd+bwd'] = best(() => {
    be.batchNormTrain(x, gamma, beta, 1e-5, a[3], mean, inv, bn);
    be.batchNormTrainBackward(gy, x, mean, inv, gamma, g1, gg, gb, bn);
  }, reps);
  results['1x1 gradInput'] = best(() => be.conv2dGradInput(gy, wPw, g1, pw), reps);
  results['1x1 gradWeight'] = best(() => be.conv2dGradWeight(x, gy, gwPw, pw), reps);
  results['dense3x3 fwd'] = best(() => be.conv2d(x, wDense, a[2], dense), reps);
  results['dense3x3 gradInput'] = best(() => be.conv2dGradInput(gy, wDense, g1, dense), reps);
  results['dense3x3 gradWeight'] = best(() => be.conv2dGradWeight(x, gy, gwDense, dense), reps);
  results['dw3x3 gradInput'] = best(() => be.conv2dGradInput(gy, wDw, g1, dw), reps);
  results['dw3x3 gradWeight'] = best(() => be.conv2dGradWeight(x, gy, gwDw, dw), reps);
  const pool = makePoolGeometry({ batch: N, channels: C, inH: H, inW: W, kernel: 3, stride: 1, padding: 1 });
  results['max_pool 3x3 fwd+bwd'] = best(() => {
    be.maxPool2d(x, a[4], pool);
    be.maxPool2dBackward(x, gy, g1, pool);
  }, reps);
  results['avg_pool 3x3 fwd+bwd'] = best(() => {
    be.avgPool2d(x, a[4], pool);
    be.avgPool2dBackward(gy, g1, pool);
  }, reps);
  results['bn fwd'] = best(() => be.batchNormTrain(x, gamma, beta, 1e-5, a[3], mean, inv, bn), reps);
  results['dense3x3 fwd+bwd'] = best(() => {
    be.conv2d(x, wDense, a[2], dense);
    be.conv2dGradInput(gy, wDense, g1, dense);
    be.conv2dGradWeight(x, gy, gwDense, dense);
  }, reps);
  results['sep block fwd+bwd'] = best(() => {
    be.relu(x, a[0], numel);
    be.conv2d(a[0], wDw, a[1], dw);
    be.conv2d(a[1], wPw, a[2], pw);
    be.batchNormTrain(a[2], gamma, beta, 1e-5, a[3], stats[0][0], stats[0][1], bn);
    be.relu(a[3], a[4], numel);
    be.conv2d(a[4], wDw, a[5], dw);
    be.conv2d(a[5], wPw, a[6], pw);
    be.batchNormTrain(a[6], gamma, beta, 1e-5, a[7], stats[1][0], stats[1][1], bn);
    // backward (the block's weights are reused, so gradient buffers are overwritten)
    be.batchNormTrainBackward(gy, a[6], stats[1][0], stats[1][1], gamma, g1, gg, gb, bn);
    be.conv2dGradWeight(a[5], g1, gwPw, pw);
    be.conv2dGradInput(g1, wPw, g2, pw);
    be.conv2dGradWeight(a[4], g2, gwDw, dw);
    be.conv2dGradInput(g2, wDw, g1, dw);
    be.reluBackward(g1, a[3], g2, numel);
    be.batchNormTrainBackward(g2, a[2], stats[0][0], stats[0][1], gamma, g1, gg, gb, bn);
    be.conv2dGradWeight(a[1], g1, gwPw, pw);
    be.conv2dGradInput(g1, wPw, g2, pw);
    be.conv2dGradWeight(a[0], g2, gwDw, dw);
    be.conv2dGradInput(g2, wDw, g1, dw);
    be.reluBackward(g1, x, g2, numel);
  }, reps);
  // Round trip of a tiny parallel job (16 parts of 4 floats) when the workers are awake.
  const eager = new WasmBackend({ threads, parallelThresholdNs: 0 });
  const tiny = eager.alloc(64);
  const tinyStats = [eager.alloc(16), eager.alloc(16)];
  const tinyGeometry = { batch: 1, channels: 16, spatial: 4 };
  results['dispatch round trip (tiny 16-part job)'] = best(
    () => eager.batchNormTrain(tiny, null, null, 1e-5, tiny, tinyStats[0], tinyStats[1], tinyGeometry), 200);
  eager.dispose();

  console.log(`threads=${threads}`);
  for (const [name, ms] of Object.entries(results)) console.log(`  ${name.padEnd(44)} ${ms.toFixed(3)} ms`);
  be.dispose();
}

const counts = process.argv.slice(2).map(Number);
for (const threads of counts.length > 0 ? counts : [1, 2]) benchmark(threads);
