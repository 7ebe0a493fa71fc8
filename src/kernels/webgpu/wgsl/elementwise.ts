/**
 * WGSL of the elementwise kernels, the channel plumbing and the weighted sums: one
 * invocation per output element, no reductions (so no order to fix beyond the one written).
 */
import { ELEMENT_MAIN, module, read, write, type BufferDecl } from './common.js';

/** Each source is compiled once per distinct text; these builders return the text and its bindings. */
export interface Source {
  label: string;
  code: string;
  buffers: readonly BufferDecl[];
}

function simple(label: string, buffers: BufferDecl[], statement: string): Source {
  return { label, buffers, code: module(buffers, `${ELEMENT_MAIN}\n  if (gid >= pu(0)) { return; }\n  ${statement}\n}`) };
}

/** P: n, offset, value. */
export const fill = (): Source => simple('fill', [write('o')], 'o[pu(1) + gid] = pf(2);');
/** P: n, srcOffset, dstOffset. */
export const copy = (): Source => simple('copy', [read('s'), write('d')], 'd[pu(2) + gid] = s[pu(1) + gid];');
/** select keeps the reference's `v > 0 ? v : 0` for NaN and -0 (max() need not). */
export const relu = (): Source => simple('relu', [read('x'), write('y')], 'let v = x[gid]; y[gid] = select(0.0, v, v > 0.0);');
export const reluBackward = (): Source => simple('reluBackward', [read('gy'), read('x'), write('gx')],
  'gx[gid] = select(0.0, gy[gid], x[gid] > 0.0);');
export const add = (): Source => simple('add', [read('a'), read('b'), write('o')], 'o[gid] = a[gid] + b[gid];');

/** alpha from P[1] (host) or from a device scalar `s[P[1]]`. */
function alphaOf(device: boolean): string {
  return device ? 's[pu(1)]' : 'pf(1)';
}

export function axpy(device: boolean): Source {
  const buffers = [read('x'), write('y'), ...(device ? [read('s')] : [])];
  return simple(`axpy${device ? 'Device' : ''}`, buffers, `y[gid] = y[gid] + ${alphaOf(device)} * x[gid];`);
}

export function scale(device: boolean, inPlace: boolean): Source {
  const buffers = [...(inPlace ? [write('o')] : [read('x'), write('o')]), ...(device ? [read('s')] : [])];
  return simple(`scale${device ? 'Device' : ''}${inPlace ? 'InPlace' : ''}`, buffers,
    `o[gid] = ${alphaOf(device)} * ${inPlace ? 'o' : 'x'}[gid];`);
}

/** P: n, per; out[i] = f[i / per] * x[i]. */
export function scaleSamples(inPlace: boolean): Source {
  const buffers = [read('f'), ...(inPlace ? [write('o')] : [read('x'), write('o')])];
  return simple(`scaleSamples${inPlace ? 'InPlace' : ''}`, buffers, `o[gid] = f[gid / pu(1)] * ${inPlace ? 'o' : 'x'}[gid];`);
}

/**
 * outs_k = alpha_k * x for `count` outputs. P: n, then per output its factor bits (host) or
 * its index into `s` (device).
 */
export function scaleMany(count: number, device: boolean): Source {
  const outs = Array.from({ length: count }, (_, k) => write(`o${k}`));
  const buffers = [read('x'), ...outs, ...(device ? [read('s')] : [])];
  const alpha = (k: number): string => (device ? `s[pu(${1 + k}u)]` : `pf(${1 + k}u)`);
  const body = outs.map((_, k) => `o${k}[gid] = ${alpha(k)} * v;`).join('\n  ');
  return simple(`scaleMany${count}${device ? 'Device' : ''}`, buffers, `let v = x[gid];\n  ${body}`);
}

/**
 * A chunk of a weighted sum, in the reference's order: ((w0 x0 + w1 x1) + w2 x2) + ...
 * The first chunk starts from w0 x0, later ones from what `o` holds. P: n, then per input its
 * weight bits (host) or its index into `s` (device).
 */
export function weightedSum(count: number, first: boolean, device: boolean): Source {
  const xs = Array.from({ length: count }, (_, k) => read(`x${k}`));
  const buffers = [write('o'), ...xs, ...(device ? [read('s')] : [])];
  const weight = (k: number): string => (device ? `s[pu(${1 + k}u)]` : `pf(${1 + k}u)`);
  const lines: string[] = [];
  lines.push(first ? `var acc = ${weight(0)} * x0[gid];` : 'var acc = o[gid];');
  for (let k = first ? 1 : 0; k < count; k++) lines.push(`acc = acc + ${weight(k)} * x${k}[gid];`);
  lines.push('o[gid] = acc;');
  return simple(`weightedSum${count}${first ? 'First' : ''}${device ? 'Device' : ''}`, buffers, lines.join('\n  '));
}

/**
 * FactorizedReduce's shift. Forward (P: n = planes*oh*ow, h, w, offset): y = x[offset:, offset:].
 * Backward (P: n = planes*h*w, h, w, offset): dst is x-shaped, src where it lands, else 0.
 */
export function cropPlanes(backward: boolean): Source {
  if (!backward) {
    return simple('cropPlanes', [read('s'), write('d')], `let h = pu(1); let w = pu(2); let off = pu(3);
  let oh = h - off; let ow = w - off;
  let p = gid / (oh * ow); let r = (gid / ow) % oh; let c = gid % ow;
  d[gid] = s[p * h * w + (r + off) * w + c + off];`);
  }
  return simple('cropPlanesBackward', [read('s'), write('d')], `let h = pu(1); let w = pu(2); let off = pu(3);
  let oh = h - off; let ow = w - off;
  let p = gid / (h * w); let r = (gid / w) % h; let c = gid % w;
  var v = 0.0;
  if (r >= off && c >= off) { v = s[p * oh * ow + (r - off) * ow + (c - off)]; }
  d[gid] = v;`);
}

/**
 * One chunk of a channel gather over `count` sources. P: n = batch*dstC*plane, plane, dstC,
 * firstSource, isFirstChunk, then the chunk's sourceChannels[count], then map[2*dstC].
 * Channels whose source is outside the chunk are left to the other chunks; zero planes
 * (map -1) are written by the first chunk unless accumulating.
 */
export function gather(count: number, accumulate: boolean): Source {
  const srcs = Array.from({ length: count }, (_, k) => read(`s${k}`));
  const buffers = [write('d'), ...srcs];
  const reads = srcs.map((_, k) => `${k === 0 ? '' : 'else '}if (j == ${k}) { v = s${k}[(n * pu(${5 + k}u) + ch) * plane + e]; }`).join('\n    ');
  return simple(`gather${count}${accumulate ? 'Accumulate' : ''}`, buffers, `let plane = pu(1); let dstC = pu(2);
  let n = gid / (dstC * plane); let dc = (gid / plane) % dstC; let e = gid % plane;
  let mapAt = ${5 + count}u + 2u * dc;
  let src = pi(mapAt);
  if (src < 0) {
    ${accumulate ? '' : 'if (pu(4) == 1u) { d[gid] = 0.0; }'}
    return;
  }
  let j = i32(src) - pi(3);
  if (j < 0 || j >= ${count}) { return; }
  let ch = pu(mapAt + 1u);
  var v = 0.0;
  ${reads}
  ${accumulate ? 'd[gid] = d[gid] + v;' : 'd[gid] = v;'}`);
}
