/**
 * Pieces shared by the WGSL sources: the binding declarations, the parameter readers and the
 * flat invocation index over an (x, y) grid of workgroups.
 *
 * Binding 0 of every kernel is its parameter slice (`P`, u32 words; f32 and i32 values are
 * their bit patterns); bindings 1..n are the storage buffers the source names, in order.
 */

/** Invocations per workgroup of every kernel (the WebGPU default limit, so any adapter runs them). */
export const WG = 256;

export interface BufferDecl {
  name: string;
  /** read_write when true. */
  write: boolean;
}

export const read = (name: string): BufferDecl => ({ name, write: false });
export const write = (name: string): BufferDecl => ({ name, write: true });

/** A complete module: declarations, helpers, `body` (which defines `fn main`). */
export function module(buffers: readonly BufferDecl[], body: string): string {
  const decls = buffers.map((b, i) =>
    `@group(0) @binding(${i + 1}) var<storage, ${b.write ? 'read_write' : 'read'}> ${b.name}: array<f32>;`).join('\n');
  return `@group(0) @binding(0) var<storage, read> P: array<u32>;
${decls}
fn pu(i: u32) -> u32 { return P[i]; }
fn pi(i: u32) -> i32 { return bitcast<i32>(P[i]); }
fn pf(i: u32) -> f32 { return bitcast<f32>(P[i]); }
${body}
`;
}

/** Header of a one-invocation-per-item kernel: `gid` is the flat index over a grid() dispatch. */
export const ELEMENT_MAIN = `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let gid = (wid.y * nwg.x + wid.x) * ${WG}u + li;`;

/** Header of a one-workgroup-per-item kernel: `item` is the flat workgroup index. */
export const GROUP_MAIN = `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let item = wid.y * nwg.x + wid.x;`;

/**
 * A fixed-order tree sum of `red[0..WG)` into red[0] (halving strides, one barrier each):
 * the same order on every run, so the same bits.
 */
export const TREE_SUM = `
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (li < s) { red[li] = red[li] + red[li + s]; }
    workgroupBarrier();
  }`;
