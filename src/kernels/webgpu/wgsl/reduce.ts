/**
 * WGSL of the kernels that reduce: dot products, batch-norm statistics and backward sums.
 *
 * No atomics: every sum has one order fixed by the shapes alone. A workgroup of WG
 * invocations owns a reduction; invocation `li` adds its strided share sequentially
 * (elements li, li + WG, ...), then TREE_SUM combines the WG partials by halving strides.
 * Long dot products are first cut into chunks of DOT_CHUNK elements (one workgroup each)
 * whose partials a second kernel sums in the same way.
 */
import { ELEMENT_MAIN, GROUP_MAIN, TREE_SUM, WG, module, read, write } from './common.js';
import type { Source } from './elementwise.js';

/** Elements per first-stage workgroup of a dot product (as the reference's float64 chunks). */
export const DOT_CHUNK = 4096;

/**
 * Stage 1 of `count` dot products sharing `a`: workgroup (chunk, z = k) writes
 * partial[k * chunks + chunk]. P: n, chunks, firstPartialRow.
 */
export function dotPartials(count: number): Source {
  const bs = Array.from({ length: count }, (_, k) => read(`b${k}`));
  const buffers = [read('a'), write('partial'), ...bs];
  const pick = bs.map((_, k) => `${k === 0 ? '' : 'else '}if (wid.z == ${k}u) { acc = acc + a[i] * b${k}[i]; }`).join('\n      ');
  return {
    label: `dotPartials${count}`, buffers, code: module(buffers, `var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let n = pu(0); let chunks = pu(1);
  let start = wid.x * ${DOT_CHUNK}u;
  var acc = 0.0;
  for (var t = 0u; t < ${DOT_CHUNK / WG}u; t = t + 1u) {
    let i = start + t * ${WG}u + li;
    if (i < n) {
      ${pick}
    }
  }
  red[li] = acc;
  ${TREE_SUM}
  if (li == 0u) { partial[(pu(2) + wid.z) * chunks + wid.x] = red[0]; }
}`),
  };
}

/**
 * Stage 2: for k = 0..count-1 in order, out[at_k] (+)= sum of partial row k. One workgroup,
 * sequential over k, so repeated targets add in order. P: chunks, count, accumulate, then at[count].
 */
export function dotFinish(): Source {
  const buffers = [read('partial'), write('o')];
  return {
    label: 'dotFinish', buffers, code: module(buffers, `var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32) {
  let chunks = pu(0); let count = pu(1);
  for (var k = 0u; k < count; k = k + 1u) {
    var acc = 0.0;
    for (var c = li; c < chunks; c = c + ${WG}u) { acc = acc + partial[k * chunks + c]; }
    red[li] = acc;
    ${TREE_SUM}
    if (li == 0u) {
      let at = pu(3u + k);
      if (pu(2) == 1u) { o[at] = o[at] + red[0]; } else { o[at] = red[0]; }
    }
    workgroupBarrier();
  }
}`),
  };
}

/**
 * The sum over one channel of `expr` (an f32 expression of the flat index `i`), into `target`
 * in every invocation. Invocation 0 broadcasts the tree's result through `bcast`: with every
 * invocation reading red[0] itself, Mesa's llvmpipe (Dawn's OpenGL ES backend) handed some of
 * them a value from before the tree finished (test/kernels/webgpu.test.ts on llvmpipe).
 */
function channelSum(expr: string, target: string): string {
  return `
  var acc${target} = 0.0;
  for (var n = 0u; n < batch; n = n + 1u) {
    let base = (n * channels + c) * spatial;
    for (var e = li; e < spatial; e = e + ${WG}u) { let i = base + e; acc${target} = acc${target} + ${expr}; }
  }
  red[li] = acc${target};
  ${TREE_SUM}
  if (li == 0u) { bcast = red[0]; }
  workgroupBarrier();
  let ${target} = bcast;
  workgroupBarrier();`;
}

const BN_HEADER = `let batch = pu(0); let channels = pu(1); let spatial = pu(2);
  let c = item;
  let count = f32(batch * spatial);`;

/** Train-mode statistics, one workgroup per channel, two passes (mean, then squared deviations). P: batch, channels, spatial, eps. */
export function batchNormStats(): Source {
  const buffers = [read('x'), write('mean'), write('invStd')];
  return {
    label: 'batchNormStats', buffers, code: module(buffers, `var<workgroup> red: array<f32, ${WG}>;
var<workgroup> bcast: f32;
${GROUP_MAIN}
  ${BN_HEADER}
  ${channelSum('x[i]', 'total')}
  let mu = total / count;
  ${channelSum('(x[i] - mu) * (x[i] - mu)', 'sq')}
  if (li == 0u && c < channels) {
    mean[c] = mu;
    invStd[c] = 1.0 / sqrt(sq / count + pf(3));
  }
}`),
  };
}

/** y = (x - mean) * (invStd * gamma) + beta, elementwise. P: n, channels, spatial. */
export function batchNormApply(gamma: boolean, beta: boolean): Source {
  const buffers = [read('x'), read('mean'), read('invStd'), ...(gamma ? [read('gamma')] : []), ...(beta ? [read('beta')] : []), write('y')];
  return {
    label: `batchNormApply${gamma ? 'G' : ''}${beta ? 'B' : ''}`, buffers, code: module(buffers, `${ELEMENT_MAIN}
  if (gid >= pu(0)) { return; }
  let c = (gid / pu(2)) % pu(1);
  let k = invStd[c]${gamma ? ' * gamma[c]' : ''};
  y[gid] = (x[gid] - mean[c]) * k${beta ? ' + beta[c]' : ''};
}`),
  };
}

/**
 * Per channel: sumGy and sumGyXhat (xhat = (x - mean) * invStd), into sums[2c], sums[2c + 1]
 * and gradBeta / gradGamma when bound. P: batch, channels, spatial.
 */
export function batchNormBackwardSums(gradGamma: boolean, gradBeta: boolean): Source {
  const buffers = [read('gy'), read('x'), read('mean'), read('invStd'), write('sums'),
    ...(gradGamma ? [write('gg')] : []), ...(gradBeta ? [write('gb')] : [])];
  return {
    label: `batchNormBackwardSums${gradGamma ? 'G' : ''}${gradBeta ? 'B' : ''}`, buffers, code: module(buffers, `var<workgroup> red: array<f32, ${WG}>;
var<workgroup> bcast: f32;
${GROUP_MAIN}
  ${BN_HEADER}
  let cc = min(c, channels - 1u);
  let mu = mean[cc]; let inv = invStd[cc];
  ${channelSum('gy[i]', 'sumGy')}
  ${channelSum('gy[i] * ((x[i] - mu) * inv)', 'sumGyXhat')}
  if (li == 0u && c < channels) {
    sums[2u * c] = sumGy;
    sums[2u * c + 1u] = sumGyXhat;
    ${gradGamma ? 'gg[c] = sumGyXhat;' : ''}
    ${gradBeta ? 'gb[c] = sumGy;' : ''}
  }
}`),
  };
}

/** gradX = k (gy - sumGy / M - xhat sumGyXhat / M), k = gamma invStd. P: n, channels, spatial, M. */
export function batchNormTrainGradInput(gamma: boolean): Source {
  const buffers = [read('gy'), read('x'), read('mean'), read('invStd'), read('sums'), ...(gamma ? [read('gamma')] : []), write('gx')];
  return {
    label: `batchNormTrainGradInput${gamma ? 'G' : ''}`, buffers, code: module(buffers, `${ELEMENT_MAIN}
  if (gid >= pu(0)) { return; }
  let c = (gid / pu(2)) % pu(1);
  let m = f32(pu(3));
  let inv = invStd[c];
  let k = inv${gamma ? ' * gamma[c]' : ''};
  let xhat = (x[gid] - mean[c]) * inv;
  gx[gid] = k * (gy[gid] - sums[2u * c] / m - xhat * (sums[2u * c + 1u] / m));
}`),
  };
}

/** gradX = gy * invStd * gamma (fixed statistics). P: n, channels, spatial. */
export function batchNormApplyGradInput(gamma: boolean): Source {
  const buffers = [read('gy'), read('invStd'), ...(gamma ? [read('gamma')] : []), write('gx')];
  return {
    label: `batchNormApplyGradInput${gamma ? 'G' : ''}`, buffers, code: module(buffers, `${ELEMENT_MAIN}
  if (gid >= pu(0)) { return; }
  let c = (gid / pu(2)) % pu(1);
  gx[gid] = gy[gid] * (invStd[c]${gamma ? ' * gamma[c]' : ''});
}`),
  };
}

/** gradB[o] = sum over rows of gradY[m, o], sequential in m. P: rows, outF. */
export function linearGradBias(): Source {
  const buffers = [read('gy'), write('gb')];
  return {
    label: 'linearGradBias', buffers, code: module(buffers, `${ELEMENT_MAIN}
  let rows = pu(0); let outF = pu(1);
  if (gid >= outF) { return; }
  var acc = 0.0;
  for (var m = 0u; m < rows; m = m + 1u) { acc = acc + gy[m * outF + gid]; }
  gb[gid] = acc;
}`),
  };
}
