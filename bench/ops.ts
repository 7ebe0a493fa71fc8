/**
 * `npm run bench -- ops`: per-operation times of the PC-DARTS building blocks, ours against
 * PyTorch at the same thread count.
 *
 * Every measured side (ours at n threads, PyTorch at n threads) runs in its own fresh process,
 * one after the other, never concurrently: the thread count of our backend is fixed when it
 * is created, and PyTorch's timings at 2 threads collapse when anything else runs.
 *
 * The parent process (run) spawns `node dist/bench/ops.js --worker '<json config>'` for our
 * side and `python3 bench/pytorch/ops.py '<json config>'` for PyTorch's; each prints one JSON
 * line of results on stdout.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { kernels, setBackend } from '../src/kernels/registry.js';
import { backward, noGrad, record } from '../src/tensor/autograd.js';
import { avgPool2d, batchNorm2d, conv2d, maxPool2d, relu } from '../src/tensor/ops.js';
import { Random } from '../src/tensor/random.js';
import { type Tensor, empty, fromArray, full, tidy, zeros } from '../src/tensor/tensor.js';
import {
  LOAD_REMINDER, PYTORCH_HINT, availableCores, defaultPython, detectPytorch, formatMs, formatRatio,
  formatTable, loadWarning, machineBusySeconds, machineLine, otherLoad, parsePositiveInt, parseThreadList,
  peakRssMiB, processCpuSeconds, runJsonChild, timeCalls,
  runAsWorker,
} from './harness.js';

export const description = 'forward/backward time of each PC-DARTS operation vs PyTorch, at 1 thread and all cores';

// ---------------------------------------------------------------------------------------
// What is measured (the ids are shared with bench/pytorch/ops.py)

export interface OpSpec {
  readonly id: string;
  readonly label: string;
  readonly pass: 'fwd' | 'fwd+bwd';
}

export const OPS: readonly OpSpec[] = [
  { id: 'sep_conv_3x3', label: 'sep_conv_3x3 block', pass: 'fwd+bwd' },
  { id: 'dil_conv_3x3', label: 'dil_conv_3x3 block', pass: 'fwd+bwd' },
  { id: 'conv_3x3', label: 'conv 3x3 C->C', pass: 'fwd+bwd' },
  { id: 'dw_conv_3x3_fwd', label: 'depthwise 3x3', pass: 'fwd' },
  { id: 'dw_conv_3x3', label: 'depthwise 3x3', pass: 'fwd+bwd' },
  { id: 'conv_1x1', label: 'conv 1x1 C->C', pass: 'fwd+bwd' },
  { id: 'batch_norm', label: 'batch norm (train)', pass: 'fwd+bwd' },
  { id: 'max_pool_3x3', label: 'max pool 3x3 s1 p1', pass: 'fwd+bwd' },
  { id: 'avg_pool_3x3', label: 'avg pool 3x3 s1 p1', pass: 'fwd+bwd' },
];

/** The search network's first-cell input, and its K=4 partial-channel slice. */
export const SHAPES: readonly (readonly number[])[] = [
  [64, 16, 32, 32],
  [64, 4, 32, 32],
];

/** Other load (cores) above which a measurement is flagged as disturbed. */
const OTHER_LOAD_LIMIT = 0.1;

const BACKENDS: Record<string, string> = {
  wasm: '../src/kernels/wasm/backend.js',
  ref: '../src/kernels/ref/backend.js',
};

export interface WorkerConfig {
  backend: string;
  threads: number;
  shapes: number[][];
  ops: string[];
  warmup: number;
  repeat: number;
  seed: number;
}

export interface CaseResult {
  shape: number[];
  op: string;
  medianMs: number | null;
  samplesMs?: number[];
  error?: string;
  /** Backend bytes still live after the row's tensors were disposed (should be 0). */
  leakedBytes?: number;
}

export interface WorkerResult {
  side: string;
  /** Our backend name, or the torch version. */
  version: string;
  /** Threads the side actually used (backend.threads / torch.get_num_threads()). */
  threads: number;
  results: CaseResult[];
  peakRssMiB: number;
  /** CPU seconds the process used in all (to tell other load apart from ours). */
  cpuSeconds?: number;
}

// ---------------------------------------------------------------------------------------
// Our side (worker process)

function randn(rng: Random, n: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

/**
 * loss = sum(y * r), recorded for autograd: what ops.dotConstant(y, r.data) computes, but
 * with r a tensor of backend memory used as is. dotConstant keeps a JS-heap copy of r for
 * its backward, which the wasm backend rejects (it takes only buffers of its own memory),
 * and the copy would add a full-size memcpy to every timed call. PyTorch's side is
 * (y * r).sum().
 */
function weightedLoss(y: Tensor, r: Tensor): Tensor {
  const k = kernels();
  const loss = empty([]);
  loss.data[0] = k.dot(y.data, r.data, y.numel);
  return record(loss, {
    name: 'benchLoss',
    inputs: [y],
    backward: (gy) => {
      const gx = empty(y.shape);
      k.scale(r.data, gy.data[0], gx.data, y.numel);
      return [gx];
    },
  });
}

interface Case {
  /** One timed call. */
  run(): void;
  /** Untimed, before every call: drop the gradients accumulated on the leaves. */
  reset(): void;
  dispose(): void;
}

function buildCase(op: string, shape: readonly number[], rng: Random): Case {
  const [, c] = shape;
  const numel = shape.reduce((a, b) => a * b, 1);
  const kept: Tensor[] = [];
  const leaves: Tensor[] = [];
  const leaf = (values: Float32Array, s: readonly number[]): Tensor => {
    const t = fromArray(values, s, true).keep();
    kept.push(t);
    leaves.push(t);
    return t;
  };
  const constant = (t: Tensor): Tensor => {
    kept.push(t.keep());
    return t;
  };
  const x = leaf(randn(rng, numel, 1), shape);
  // All ops keep the shape (stride 1, "same" padding); r lives in backend memory.
  const r = constant(fromArray(randn(rng, numel, 1), shape));
  const depthwise = (): Tensor => leaf(randn(rng, c * 9, 1 / 3), [c, 1, 3, 3]);
  const pointwise = (): Tensor => leaf(randn(rng, c * c, 1 / Math.sqrt(c)), [c, c, 1, 1]);
  const bn = (): ((h: Tensor) => Tensor) => {
    const runningMean = constant(zeros([c]));
    const runningVar = constant(full([c], 1));
    return (h) => batchNorm2d(h, { weight: null, bias: null, runningMean, runningVar, training: true });
  };

  let forward: () => Tensor;
  let withBackward = true;
  switch (op) {
    case 'sep_conv_3x3': {
      const [dw1, pw1, bn1, dw2, pw2, bn2] = [depthwise(), pointwise(), bn(), depthwise(), pointwise(), bn()];
      forward = () => {
        let h = relu(x);
        h = conv2d(h, dw1, { padding: 1, groups: c });
        h = bn1(conv2d(h, pw1));
        h = relu(h);
        h = conv2d(h, dw2, { padding: 1, groups: c });
        return bn2(conv2d(h, pw2));
      };
      break;
    }
    case 'dil_conv_3x3': {
      const [dw, pw, norm] = [depthwise(), pointwise(), bn()];
      forward = () => norm(conv2d(conv2d(relu(x), dw, { padding: 2, dilation: 2, groups: c }), pw));
      break;
    }
    case 'conv_3x3': {
      const w = leaf(randn(rng, c * c * 9, 1 / Math.sqrt(9 * c)), [c, c, 3, 3]);
      forward = () => conv2d(x, w, { padding: 1 });
      break;
    }
    case 'dw_conv_3x3_fwd':
    case 'dw_conv_3x3': {
      const w = depthwise();
      forward = () => conv2d(x, w, { padding: 1, groups: c });
      withBackward = op === 'dw_conv_3x3';
      break;
    }
    case 'conv_1x1': {
      const w = pointwise();
      forward = () => conv2d(x, w);
      break;
    }
    case 'batch_norm': {
      const norm = bn();
      forward = () => norm(x);
      break;
    }
    case 'max_pool_3x3':
      forward = () => maxPool2d(x, { kernel: 3, stride: 1, padding: 1 });
      break;
    case 'avg_pool_3x3':
      forward = () => avgPool2d(x, { kernel: 3, stride: 1, padding: 1 });
      break;
    default:
      throw new Error(`unknown op '${op}' (known: ${OPS.map((o) => o.id).join(', ')})`);
  }

  return {
    run: withBackward
      ? () => tidy(() => { backward(weightedLoss(forward(), r)); })
      : () => tidy(() => { noGrad(forward); }),
    reset: () => {
      for (const t of leaves) {
        t.grad?.dispose();
        t.grad = null;
      }
    },
    dispose: () => {
      for (const t of kept) {
        t.grad?.dispose();
        t.dispose();
      }
    },
  };
}

/** The compiled module that registers backend `name`; throws when unknown or not built. */
function backendModule(name: string): URL {
  const module = BACKENDS[name];
  if (!module) throw new Error(`--backend: unknown backend '${name}' (known: ${Object.keys(BACKENDS).join(', ')})`);
  const url = new URL(module, import.meta.url);
  if (!existsSync(fileURLToPath(url))) {
    throw new Error(`backend '${name}' is not built (${fileURLToPath(url)} missing): run \`npm run build\`, or try --backend ref`);
  }
  return url;
}

async function loadBackend(name: string): Promise<void> {
  await import(backendModule(name).href);
}

async function worker(config: WorkerConfig): Promise<void> {
  await loadBackend(config.backend);
  const backend = setBackend(config.backend, { threads: config.threads });
  const results: CaseResult[] = [];
  for (const shape of config.shapes) {
    for (const op of config.ops) {
      const rng = new Random(config.seed);
      const liveBefore = backend.memoryStats().liveBytes;
      let c: Case | null = null;
      let result: CaseResult;
      try {
        c = buildCase(op, shape, rng);
        const timing = timeCalls(c.run, { warmup: config.warmup, repeat: config.repeat, before: c.reset });
        result = { shape, op, medianMs: timing.medianMs, samplesMs: timing.samplesMs };
      } catch (error) {
        result = { shape, op, medianMs: null, error: error instanceof Error ? error.message : String(error) };
      } finally {
        c?.dispose();
      }
      const leaked = backend.memoryStats().liveBytes - liveBefore;
      if (leaked !== 0) result.leakedBytes = leaked;
      results.push(result);
    }
  }
  const out: WorkerResult = {
    side: 'ours', version: backend.name, threads: backend.threads, results, peakRssMiB: peakRssMiB(),
    cpuSeconds: processCpuSeconds(),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

// ---------------------------------------------------------------------------------------
// Parent process: options, children, table

interface Options {
  threads: number[];
  pytorch: boolean;
  backend: string;
  warmup: number;
  repeat: number;
  ops: string[];
  python: string;
  verbose: boolean;
}

const HELP = `usage: npm run bench -- ops [options]

Median wall time of forward(+backward) per call for each PC-DARTS operation, for inputs
${SHAPES.map((s) => `[${s.join(', ')}]`).join(' and ')}; ours and PyTorch's, each thread count and each side
in its own fresh process, one after the other. forward+backward = forward, loss = sum(y * r)
for a fixed random r, backward to the input and the weights.

options:
  --threads 1,2       thread counts to measure (default: 1 and os.availableParallelism())
  --no-pytorch        skip the PyTorch side
  --backend wasm|ref  our kernel backend (default: wasm)
  --repeat N          timed calls per measurement, median reported (default 10; --quick: 3)
  --warmup N          untimed calls first (default 3; --quick: 1)
  --quick             fewer calls (CI smoke test; numbers are noisier)
  --ops a,b           only these ops (${OPS.map((o) => o.id).join(', ')})
  --python PATH       interpreter with torch (default: $PCDARTS_PYTHON or /usr/bin/python3)
  --verbose           also print every sample of every measurement`;

function parseOptions(args: readonly string[]): Options | null {
  const cores = availableCores();
  const options: Options = {
    threads: parseThreadList(`1,${cores}`),
    pytorch: true,
    backend: 'wasm',
    warmup: 3,
    repeat: 10,
    ops: OPS.map((o) => o.id),
    python: defaultPython(),
    verbose: false,
  };
  let quick = false;
  let repeat: number | null = null;
  let warmup: number | null = null;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? args[++i];
      if (v === undefined) throw new Error(`${flag}: missing value`);
      return v;
    };
    switch (flag) {
      case '--help': case '-h': console.log(HELP); return null;
      case '--threads': options.threads = parseThreadList(value()); break;
      case '--no-pytorch': options.pytorch = false; break;
      case '--backend': options.backend = value(); break;
      case '--repeat': repeat = parsePositiveInt('--repeat', value()); break;
      case '--warmup': {
        const v = value();
        warmup = v === '0' ? 0 : parsePositiveInt('--warmup', v);
        break;
      }
      case '--quick': quick = true; break;
      case '--ops': {
        const wanted = value().split(',').map((s) => s.trim()).filter((s) => s !== '');
        for (const id of wanted) {
          if (!OPS.some((o) => o.id === id)) throw new Error(`--ops: unknown op '${id}' (known: ${OPS.map((o) => o.id).join(', ')})`);
        }
        options.ops = OPS.map((o) => o.id).filter((id) => wanted.includes(id));
        break;
      }
      case '--python': options.python = value(); break;
      case '--verbose': options.verbose = true; break;
      default: throw new Error(`ops: unknown option '${arg}'\n\n${HELP}`);
    }
  }
  backendModule(options.backend); // fail before measuring anything
  options.repeat = repeat ?? (quick ? 3 : 10);
  options.warmup = warmup ?? (quick ? 1 : 3);
  return options;
}

function pytorchScript(): string {
  const beside = fileURLToPath(new URL('../../bench/pytorch/ops.py', import.meta.url)); // from dist/bench/
  if (existsSync(beside)) return beside;
  return path.resolve('bench/pytorch/ops.py');
}

function key(shape: readonly number[], op: string): string {
  return `${shape.join('x')}/${op}`;
}

interface SideRun {
  label: string;
  threads: number;
  result: WorkerResult | null;
  error: string | null;
  /** Cores' worth of CPU that other processes used while this side was measured. */
  otherLoad: number | null;
}

async function measure(label: string, threads: number, command: string, args: string[], env?: Record<string, string>): Promise<SideRun> {
  const started = performance.now();
  const busyBefore = machineBusySeconds();
  const ownBefore = processCpuSeconds();
  process.stderr.write(`  measuring ${label} at ${threads} thread${threads === 1 ? '' : 's'} ... `);
  try {
    const result = await runJsonChild<WorkerResult>(command, args, { env });
    const wall = (performance.now() - started) / 1000;
    // Our own (parent) CPU counts as ours too: it only waits, but be exact.
    const own = result.cpuSeconds === undefined ? undefined : result.cpuSeconds + processCpuSeconds() - ownBefore;
    const load = otherLoad(busyBefore, machineBusySeconds(), own, wall);
    process.stderr.write(`${wall.toFixed(1)} s${load === null ? '' : `, other load ${load.toFixed(2)} cores`}\n`);
    return { label, threads, result, error: null, otherLoad: load };
  } catch (error) {
    process.stderr.write('failed\n');
    return { label, threads, result: null, error: error instanceof Error ? error.message : String(error), otherLoad: null };
  }
}

export async function run(args: readonly string[]): Promise<void> {
  const options = parseOptions(args);
  if (options === null) return;
  const torchVersion = options.pytorch ? detectPytorch(options.python) : null;
  const withTorch = torchVersion !== null;
  const cores = availableCores();

  console.log(machineLine(options.pytorch ? torchVersion ?? 'not found' : 'skipped (--no-pytorch)'));
  const busy = await loadWarning(OTHER_LOAD_LIMIT);
  if (busy) console.log(busy);
  console.log(`ours: backend ${options.backend}; timing: median of ${options.repeat} calls after ${options.warmup} warm-up, ` +
    'float32, every side and thread count in a fresh process, one after the other');
  for (const t of options.threads) {
    if (t > cores) console.log(`warning: ${t} threads on ${cores} cores: expect oversubscription`);
  }

  const shapes = SHAPES.map((s) => [...s]);
  const config = (threads: number): WorkerConfig => ({
    backend: options.backend, threads, shapes, ops: options.ops, warmup: options.warmup, repeat: options.repeat, seed: 1,
  });
  const self = fileURLToPath(import.meta.url);
  const script = pytorchScript();
  const runs: { ours: SideRun; torch: SideRun | null }[] = [];
  for (const threads of options.threads) {
    const cfg = JSON.stringify(config(threads));
    const ours = await measure('ours', threads, process.execPath, [...process.execArgv, self, '--worker', cfg]);
    let torch: SideRun | null = null;
    if (withTorch) {
      const n = String(threads);
      torch = await measure('pytorch', threads, options.python, [script, cfg],
        { OMP_NUM_THREADS: n, MKL_NUM_THREADS: n, OPENBLAS_NUM_THREADS: n });
    }
    runs.push({ ours, torch });
  }

  const lookup = (side: SideRun | null): Map<string, CaseResult> =>
    new Map((side?.result?.results ?? []).map((r) => [key(r.shape, r.op), r]));
  const tables = runs.map((r) => ({ threads: r.ours.threads, ours: lookup(r.ours), torch: lookup(r.torch) }));
  const headers = ['op (median ms per call)', 'pass'];
  for (const t of tables) {
    headers.push(`ours@${t.threads}`);
    if (withTorch) headers.push(`torch@${t.threads}`, `ratio@${t.threads}`);
  }
  const cell = (r: CaseResult | undefined): string => (r === undefined ? '-' : r.error !== undefined ? 'error' : formatMs(r.medianMs));
  for (const shape of shapes) {
    console.log(`\nx = [${shape.join(', ')}]`);
    const rows = options.ops.map((op) => {
      const spec = OPS.find((o) => o.id === op) as OpSpec;
      const row = [spec.label, spec.pass];
      for (const t of tables) {
        const ours = t.ours.get(key(shape, op));
        row.push(cell(ours));
        if (withTorch) {
          const theirs = t.torch.get(key(shape, op));
          row.push(cell(theirs), formatRatio(ours?.medianMs, theirs?.medianMs));
        }
      }
      return row;
    });
    console.log(formatTable(headers, rows, ['left', 'left']));
  }
  if (withTorch) console.log('\nratio = ours / PyTorch at the same thread count (below 1: we are faster)');

  const rss: string[] = [];
  const used: string[] = [];
  for (const r of runs) {
    for (const side of [r.ours, r.torch]) {
      if (side?.result) {
        rss.push(`${side.label}@${side.threads} ${side.result.peakRssMiB.toFixed(0)}`);
        if (side.result.threads !== side.threads) used.push(`${side.label} asked for ${side.threads} threads, used ${side.result.threads}`);
      }
    }
  }
  if (rss.length > 0) console.log(`peak RSS per process (MiB): ${rss.join(', ')}`);
  const loads = runs.flatMap((r) => [r.ours, r.torch]).filter((side): side is SideRun => side !== null && side.otherLoad !== null);
  if (loads.length > 0) {
    console.log(`other load while measuring (cores busy outside the measured process): ${
      loads.map((side) => `${side.label}@${side.threads} ${(side.otherLoad as number).toFixed(2)}`).join(', ')}`);
    if (loads.some((side) => (side.otherLoad as number) > OTHER_LOAD_LIMIT)) {
      console.log(`warning: other load above ${OTHER_LOAD_LIMIT} cores during a measurement: rerun on an idle machine before trusting those columns`);
    }
  }
  for (const line of used) console.log(`warning: ${line}`);

  // Identical messages are grouped: a broken kernel fails every row that uses it.
  const problems = new Map<string, string[]>();
  for (const r of runs) {
    for (const c of r.ours.result?.results ?? []) {
      if (c.leakedBytes) console.log(`warning: ours@${r.ours.threads} ${c.op} [${c.shape.join(',')}] left ${c.leakedBytes} bytes live (tensors not freed by tidy)`);
    }
  }
  const problem = (message: string, where: string): void => {
    problems.set(message, [...(problems.get(message) ?? []), where]);
  };
  for (const r of runs) {
    for (const side of [r.ours, r.torch]) {
      if (!side) continue;
      if (side.error) problem(side.error, `${side.label}@${side.threads}`);
      for (const c of side.result?.results ?? []) {
        if (c.error) problem(c.error, `${side.label}@${side.threads} ${c.op} [${c.shape.join(',')}]`);
      }
    }
  }
  if (problems.size > 0) {
    console.log('\nerrors:');
    for (const [message, where] of problems) console.log(`  ${message}\n    in: ${where.join('; ')}`);
  }
  if (options.verbose) {
    console.log('\nsamples (ms):');
    for (const r of runs) {
      for (const side of [r.ours, r.torch]) {
        for (const c of side?.result?.results ?? []) {
          console.log(`  ${side?.label}@${side?.threads} ${c.op} [${c.shape.join(', ')}]: ${(c.samplesMs ?? []).map((v) => formatMs(v)).join(' ')}`);
        }
      }
    }
  }

  if (!options.pytorch) console.log('\n(PyTorch side skipped: --no-pytorch)');
  else if (!withTorch) console.log(`\nPyTorch not found (\`${options.python} -c 'import torch'\` failed): ${PYTORCH_HINT} to get the comparison columns.`);
  if (withTorch) console.log(`\n${LOAD_REMINDER}`);
  if (runs.some((r) => r.ours.error !== null || r.torch?.error)) process.exitCode = 1;
}

// ---------------------------------------------------------------------------------------
// Worker entry: node dist/bench/ops.js --worker '<json>'

runAsWorker<WorkerConfig>(import.meta.url, 'ops', worker, (error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
