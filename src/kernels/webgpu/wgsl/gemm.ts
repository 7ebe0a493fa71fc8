/**
 * WGSL of the tiled matrix products: linear layers and every convolution that is not
 * depthwise, as implicit GEMMs (the im2col matrix is never stored: the tile loaders compute
 * which input element, or zero, sits at each (k, n)).
 *
 * C[g][m][n] = sum_k A[g][m][k] * B[g][k][n], batched over groups g. A workgroup of 16x16
 * invocations owns a BM x BN tile of C and walks k in steps of BK through workgroup memory;
 * invocation (tx, ty) accumulates the TM x TN outputs (ty + 16 i, tx + 16 j). Each output's
 * sum runs over k in increasing order, in float32, the same on every run.
 *
 * Split-K (for the weight gradient's long reductions over batch x positions): workgroup z
 * = split * groups + g covers k in [split * kChunk, (split + 1) * kChunk) and writes its
 * partial tile to `part`; a second kernel adds the splits in order.
 *
 * P: M, N, K, kChunk, groups, splits, then the geometry at GEOMETRY_AT (conv: batch, inC,
 * inH, inW, outC, kH, kW, sH, sW, pH, pW, dH, dW, outH, outW, cinG, coutG).
 */
import { ELEMENT_MAIN, WG, module, read, write, type BufferDecl } from './common.js';
import type { Source } from './elementwise.js';

export const BK = 16;
export const GEOMETRY_AT = 8;

export interface Tile {
  bm: number;
  bn: number;
}

/** The tile for an M x N product: tall tiles are wasted on the 16-channel layers of a search network. */
export function tileFor(m: number, _n: number): Tile {
  if (m <= 16) return { bm: 16, bn: 128 };
  if (m <= 32) return { bm: 32, bn: 64 };
  return { bm: 64, bn: 64 };
}

/** Splits of the k range: one per 4096 values of k (at most 64), from the shape alone. */
export function splitsFor(k: number): number {
  return Math.min(64, Math.max(1, Math.ceil(k / 4096)));
}

export type GemmKind = 'conv' | 'convGradInput' | 'convGradWeight' | 'linear' | 'linearGradInput' | 'linearGradWeight';

const CONV_GEOMETRY = `let batch = pu(${GEOMETRY_AT}u); let inC = pu(${GEOMETRY_AT + 1}u); let inH = pi(${GEOMETRY_AT + 2}u); let inW = pi(${GEOMETRY_AT + 3}u);
  let outC = pu(${GEOMETRY_AT + 4}u); let kH = pu(${GEOMETRY_AT + 5}u); let kW = pu(${GEOMETRY_AT + 6}u);
  let sH = pi(${GEOMETRY_AT + 7}u); let sW = pi(${GEOMETRY_AT + 8}u); let pH = pi(${GEOMETRY_AT + 9}u); let pW = pi(${GEOMETRY_AT + 10}u);
  let dH = pi(${GEOMETRY_AT + 11}u); let dW = pi(${GEOMETRY_AT + 12}u); let outH = pu(${GEOMETRY_AT + 13}u); let outW = pu(${GEOMETRY_AT + 14}u);
  let cinG = pu(${GEOMETRY_AT + 15}u); let coutG = pu(${GEOMETRY_AT + 16}u);`;

/** Loader and store functions of each product: A(g, m, k), B(g, k, n), store(g, m, n, v), with in-range indices. */
function accessors(kind: GemmKind, hasBias: boolean): { buffers: BufferDecl[]; code: string } {
  switch (kind) {
    case 'conv':
      // A = weight [outC, cinG*kH*kW] (contiguous in k); B = im2col of x; C = y.
      return {
        buffers: [read('x'), read('w'), write('c')],
        code: `fn loadA(g: u32, m: u32, k: u32) -> f32 { return w[(g * pu(0) + m) * pu(2) + k]; }
fn loadB(g: u32, k: u32, n: u32) -> f32 {
  ${CONV_GEOMETRY}
  let khw = kH * kW; let cl = k / khw; let r = k % khw; let kh = i32(r / kW); let kw = i32(r % kW);
  let positions = outH * outW; let b = n / positions; let q = n % positions;
  let ih = i32(q / outW) * sH - pH + kh * dH; let iw = i32(q % outW) * sW - pW + kw * dW;
  if (ih < 0 || ih >= inH || iw < 0 || iw >= inW) { return 0.0; }
  return x[((b * inC + g * cinG + cl) * u32(inH) + u32(ih)) * u32(inW) + u32(iw)];
}
fn store(g: u32, m: u32, n: u32, v: f32) {
  let outC = pu(${GEOMETRY_AT + 4}u); let positions = pu(${GEOMETRY_AT + 13}u) * pu(${GEOMETRY_AT + 14}u);
  let b = n / positions; let q = n % positions;
  c[(b * outC + g * pu(0) + m) * positions + q] = v;
}`,
      };
    case 'convGradInput':
      // A[m = input channel within the group][k = (col, kh, kw)] = weight[g*coutG + col][m][kh][kw];
      // B[k][n = (b, ih, iw)] = gradY at the output position that reads (ih, iw) through (kh, kw), or 0.
      return {
        buffers: [read('gy'), read('w'), write('c')],
        code: `fn loadA(g: u32, m: u32, k: u32) -> f32 {
  let khw = pu(${GEOMETRY_AT + 5}u) * pu(${GEOMETRY_AT + 6}u); let cinG = pu(${GEOMETRY_AT + 15}u); let coutG = pu(${GEOMETRY_AT + 16}u);
  let col = k / khw; let r = k % khw;
  return w[((g * coutG + col) * cinG + m) * khw + r];
}
fn loadB(g: u32, k: u32, n: u32) -> f32 {
  ${CONV_GEOMETRY}
  let khw = kH * kW; let col = k / khw; let r = k % khw; let kh = i32(r / kW); let kw = i32(r % kW);
  let plane = u32(inH * inW); let b = n / plane; let q = n % plane;
  let th = i32(q / u32(inW)) + pH - kh * dH; let tw = i32(q % u32(inW)) + pW - kw * dW;
  if (th < 0 || tw < 0 || th % sH != 0 || tw % sW != 0) { return 0.0; }
  let oh = u32(th / sH); let ow = u32(tw / sW);
  if (oh >= outH || ow >= outW) { return 0.0; }
  return gy[((b * outC + g * coutG + col) * outH + oh) * outW + ow];
}
fn store(g: u32, m: u32, n: u32, v: f32) {
  let inC = pu(${GEOMETRY_AT + 1}u); let plane = pu(${GEOMETRY_AT + 2}u) * pu(${GEOMETRY_AT + 3}u);
  let b = n / plane; let q = n % plane;
  c[(b * inC + g * pu(${GEOMETRY_AT + 15}u) + m) * plane + q] = v;
}`,
      };
    case 'convGradWeight':
      // A[m = output channel within the group][k = (b, oh, ow)] = gradY; B[k][n = (cl, kh, kw)] = x through the window; C = gradW (or a split's partial).
      return {
        buffers: [read('x'), read('gy'), write('c')],
        code: `fn loadA(g: u32, m: u32, k: u32) -> f32 {
  let outC = pu(${GEOMETRY_AT + 4}u); let positions = pu(${GEOMETRY_AT + 13}u) * pu(${GEOMETRY_AT + 14}u);
  let b = k / positions; let q = k % positions;
  return gy[(b * outC + g * pu(${GEOMETRY_AT + 16}u) + m) * positions + q];
}
fn loadB(g: u32, k: u32, n: u32) -> f32 {
  ${CONV_GEOMETRY}
  let positions = outH * outW; let b = k / positions; let q = k % positions;
  let khw = kH * kW; let cl = n / khw; let r = n % khw; let kh = i32(r / kW); let kw = i32(r % kW);
  let ih = i32(q / outW) * sH - pH + kh * dH; let iw = i32(q % outW) * sW - pW + kw * dW;
  if (ih < 0 || ih >= inH || iw < 0 || iw >= inW) { return 0.0; }
  return x[((b * inC + g * cinG + cl) * u32(inH) + u32(ih)) * u32(inW) + u32(iw)];
}
fn store(g: u32, m: u32, n: u32, v: f32) { c[(g * pu(0) + m) * pu(1) + n] = v; }`,
      };
    case 'linear':
      // A = x [rows, inF]; B[k][n] = weight[n][k]; C = y (+ bias[n]).
      return {
        buffers: [read('x'), read('w'), ...(hasBias ? [read('bias')] : []), write('c')],
        code: `fn loadA(g: u32, m: u32, k: u32) -> f32 { return x[m * pu(2) + k]; }
fn loadB(g: u32, k: u32, n: u32) -> f32 { return w[n * pu(2) + k]; }
fn store(g: u32, m: u32, n: u32, v: f32) { c[m * pu(1) + n] = v${hasBias ? ' + bias[n]' : ''}; }`,
      };
    case 'linearGradInput':
      // A = gradY [rows, outF]; B = weight [outF, inF]; C = gradX [rows, inF].
      return {
        buffers: [read('gy'), read('w'), write('c')],
        code: `fn loadA(g: u32, m: u32, k: u32) -> f32 { return gy[m * pu(2) + k]; }
fn loadB(g: u32, k: u32, n: u32) -> f32 { return w[k * pu(1) + n]; }
fn store(g: u32, m: u32, n: u32, v: f32) { c[m * pu(1) + n] = v; }`,
      };
    case 'linearGradWeight':
      // A[m = o][k = row] = gradY[row][o]; B = x [rows, inF]; C = gradW [outF, inF].
      return {
        buffers: [read('gy'), read('x'), write('c')],
        code: `fn loadA(g: u32, m: u32, k: u32) -> f32 { return gy[k * pu(0) + m]; }
fn loadB(g: u32, k: u32, n: u32) -> f32 { return x[k * pu(1) + n]; }
fn store(g: u32, m: u32, n: u32, v: f32) { c[(g * pu(0) + m) * pu(1) + n] = v; }`,
      };
  }
}

/**
 * The tiled product of `kind`. With `split`, C is the partial buffer [splits][groups][M][N]
 * instead of the product's own store.
 */
export function gemm(kind: GemmKind, tile: Tile, split: boolean, hasBias = false): Source {
  const { bm, bn } = tile;
  const tm = bm / 16;
  const tn = bn / 16;
  const acc = accessors(kind, hasBias);
  const buffers = acc.buffers;
  const store = split
    ? `c[((split * groups + g) * M + m) * N + n] = v;`
    : 'store(g, m, n, v);';
  const code = module(buffers, `${split ? acc.code.replace(/fn store\([^]*$/, '') : acc.code}
var<workgroup> As: array<f32, ${BK * bm}>;
var<workgroup> Bs: array<f32, ${BK * bn}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let M = pu(0); let N = pu(1); let K = pu(2); let kChunk = pu(3); let groups = pu(4);
  let g = wid.z % groups; let split = wid.z / groups;
  let m0 = wid.y * ${bm}u; let n0 = wid.x * ${bn}u;
  let kBegin = split * kChunk; let kEnd = min(K, kBegin + kChunk);
  let tx = li % 16u; let ty = li / 16u;
  var acc: array<f32, ${tm * tn}>;
  for (var i = 0u; i < ${tm * tn}u; i = i + 1u) { acc[i] = 0.0; }
  for (var k0 = kBegin; k0 < kEnd; k0 = k0 + ${BK}u) {
    for (var e = li; e < ${bm * BK}u; e = e + ${WG}u) {
      let mm = e / ${BK}u; let kk = e % ${BK}u;
      var v = 0.0;
      if (m0 + mm < M && k0 + kk < kEnd) { v = loadA(g, m0 + mm, k0 + kk); }
      As[kk * ${bm}u + mm] = v;
    }
    for (var e = li; e < ${bn * BK}u; e = e + ${WG}u) {
      let kk = e / ${bn}u; let nn = e % ${bn}u;
      var v = 0.0;
      if (n0 + nn < N && k0 + kk < kEnd) { v = loadB(g, k0 + kk, n0 + nn); }
      Bs[kk * ${bn}u + nn] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${BK}u; kk = kk + 1u) {
      for (var i = 0u; i < ${tm}u; i = i + 1u) {
        let a = As[kk * ${bm}u + ty + 16u * i];
        for (var j = 0u; j < ${tn}u; j = j + 1u) {
          acc[i * ${tn}u + j] = acc[i * ${tn}u + j] + a * Bs[kk * ${bn}u + tx + 16u * j];
        }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < ${tm}u; i = i + 1u) {
    let m = m0 + ty + 16u * i;
    if (m >= M) { continue; }
    for (var j = 0u; j < ${tn}u; j = j + 1u) {
      let n = n0 + tx + 16u * j;
      if (n >= N) { continue; }
      let v = acc[i * ${tn}u + j];
      ${store}
    }
  }
}`);
  return { label: `${kind}${split ? 'Split' : ''}${hasBias ? 'Bias' : ''}_${bm}x${bn}`, buffers, code };
}

/**
 * Sums the splits of a partial product [splits][groups][M][N] in split order and stores the
 * result with the product's own store(). P: the product's (pu(5) = splits).
 */
export function gemmSplitSum(kind: 'convGradWeight' | 'linearGradWeight'): Source {
  const acc = accessors(kind, false);
  const target = acc.buffers[acc.buffers.length - 1];
  const buffers = [read('part'), write(target.name)];
  const storeOnly = acc.code.slice(acc.code.indexOf('fn store('));
  const code = module(buffers, `${storeOnly}
${ELEMENT_MAIN}
  let M = pu(0); let N = pu(1); let groups = pu(4); let splits = pu(5);
  let total = groups * M * N;
  if (gid >= total) { return; }
  var v = 0.0;
  for (var s = 0u; s < splits; s = s + 1u) { v = v + part[s * total + gid]; }
  let g = gid / (M * N); let m = (gid / N) % M; let n = gid % N;
  store(g, m, n, v);
}`);
  return { label: `${kind}SplitSum`, buffers, code };
}
