/**
 * Merges the two sides of bench/gpu/run.sh into one JSON with our/PyTorch ratios, and prints
 * a table. `node dist/bench/gpu/merge.js WEBGPU.json [PYTORCH.json] OUT.json [--probe FILE]`.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

interface Timed { ms: number; fastestMs: number; gflops?: number }
interface ConvRow { name: string; batch: number; forward: Timed; gradInput: Timed; gradWeight: Timed }
interface GemmRow { n: number; ms: number; gflops: number }
interface Side {
  side: string;
  smoke: boolean;
  dispatch: { usPerDispatch: number };
  gemm: GemmRow[];
  conv: ConvRow[];
  [key: string]: unknown;
}

const ratio = (ours: number, theirs: number): number => ours / theirs;

export function merge(webgpu: Side, pytorch: Side | null, probe: string | null): Record<string, unknown> {
  const comparisons: Record<string, unknown>[] = [];
  if (pytorch) {
    comparisons.push({ what: 'dispatch', oursUs: webgpu.dispatch.usPerDispatch, pytorchUs: pytorch.dispatch.usPerDispatch,
      timeRatio: ratio(webgpu.dispatch.usPerDispatch, pytorch.dispatch.usPerDispatch) });
    for (const g of webgpu.gemm) {
      const t = pytorch.gemm.find((p) => p.n === g.n);
      if (t) comparisons.push({ what: `gemm ${g.n}`, oursMs: g.ms, pytorchMs: t.ms, timeRatio: ratio(g.ms, t.ms) });
    }
    for (const c of webgpu.conv) {
      const t = pytorch.conv.find((p) => p.name === c.name && p.batch === c.batch);
      if (!t) continue;
      for (const pass of ['forward', 'gradInput', 'gradWeight'] as const) {
        comparisons.push({ what: `${c.name} b${c.batch} ${pass}`, oursMs: c[pass].ms, pytorchMs: t[pass].ms, timeRatio: ratio(c[pass].ms, t[pass].ms) });
      }
    }
  }
  return {
    smoke: webgpu.smoke || (pytorch?.smoke ?? false),
    note: webgpu.smoke ? 'smoke run (software adapter or --quick): the figures only show that the script works' : undefined,
    probe,
    webgpu,
    pytorch,
    comparisons,
    search: {
      todo: 'phase 2 of issue #17: s/step of the search at K=4 b256 and K=1 b64 on webgpu and in PyTorch CUDA, once the engine runs on the webgpu backend',
    },
  };
}

function table(merged: Record<string, unknown>): string {
  const rows = merged.comparisons as { what: string; oursMs?: number; pytorchMs?: number; oursUs?: number; pytorchUs?: number; timeRatio: number }[];
  if (rows.length === 0) return 'no PyTorch side: no ratios';
  const width = Math.max(...rows.map((r) => r.what.length));
  const lines = [`${'what'.padEnd(width)}  ${'ours'.padStart(10)}  ${'pytorch'.padStart(10)}  ours/pytorch`];
  for (const r of rows) {
    const unit = r.oursUs !== undefined ? 'us' : 'ms';
    const ours = (r.oursUs ?? r.oursMs ?? NaN).toFixed(3);
    const theirs = (r.pytorchUs ?? r.pytorchMs ?? NaN).toFixed(3);
    lines.push(`${r.what.padEnd(width)}  ${`${ours} ${unit}`.padStart(10)}  ${`${theirs} ${unit}`.padStart(10)}  ${r.timeRatio.toFixed(2)}x`);
  }
  return lines.join('\n');
}

function main(argv: string[]): number {
  let probeFile: string | null = null;
  const files: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--probe') probeFile = argv[++i];
    else files.push(argv[i]);
  }
  if (files.length < 2 || files.length > 3) {
    console.error('usage: node dist/bench/gpu/merge.js WEBGPU.json [PYTORCH.json] OUT.json [--probe FILE]');
    return 2;
  }
  const out = files[files.length - 1];
  const webgpu = JSON.parse(readFileSync(files[0], 'utf8')) as Side;
  const pytorch = files.length === 3 && existsSync(files[1]) ? JSON.parse(readFileSync(files[1], 'utf8')) as Side : null;
  const probe = probeFile && existsSync(probeFile) ? readFileSync(probeFile, 'utf8') : null;
  const merged = merge(webgpu, pytorch, probe);
  writeFileSync(out, `${JSON.stringify(merged, null, 2)}\n`);
  console.log(table(merged));
  return 0;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/.*\//, ''))) process.exitCode = main(process.argv.slice(2));
