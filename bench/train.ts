/**
 * `npm run bench -- train`: images/s and peak RSS of training steps of the retraining network
 * (PC_DARTS_cifar genotype, C=36, 20 layers, auxiliary head, drop path 0.3, 32x32x3), ours
 * and, with --vs-pytorch, PyTorch's (bench/pytorch/train.py).
 *
 * Every batch size of every side runs in its own fresh process, one after the other. The
 * parent spawns `node dist/bench/train.js --worker '<json>'` for our side; the plumbing
 * (children, load notes, tables) is bench/search.ts's.
 */
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { publishedGenotype, type Genotype } from '../src/darts/genotype.js';
import { NetworkCIFAR } from '../src/eval/network.js';
import { setBackend } from '../src/kernels/registry.js';
import { clipGradNorm, SGD } from '../src/nn/optim.js';
import { backward, DEFAULT_EVAL_ACTIVATION_BUDGET_BYTES } from '../src/tensor/autograd.js';
import * as ops from '../src/tensor/ops.js';
import { manualSeed, Random } from '../src/tensor/random.js';
import { fromArray, tidy } from '../src/tensor/tensor.js';
import {
  LOAD_REMINDER, formatRatio, formatTable, median, parsePositiveInt, peakRssMiB, processCpuSeconds, runAsWorker,
} from './harness.js';
import {
  type SideRun, type StepResult, backendModule, checkFixtures, cpuTimeLine, efficiencyLines, fastestStepLine, flopCount, measureOurPeak, formatGiB, formatRate, formatSeconds, measureSide, parseCommon,
  preamble, pytorchScript, reportProcesses, reportWorkerError, samplesLines, threadEnv,
} from './search.js';

export const description = 'images/s and peak RSS of training steps of PC_DARTS_cifar C36 L20 (aux head, drop path) vs PyTorch';

/** The authors' code on PyTorch 1.13, 2 threads (../shared/anchors/pytorch-search.md). */
const ANCHORS: Record<number, { seconds: number; rate: number; gb: number }> = {
  64: { seconds: 5.5, rate: 11.7, gb: 5.6 },
  128: { seconds: 12.2, rate: 10.5, gb: 10.9 },
};

export interface TrainWorkerConfig {
  backend: string;
  threads: number;
  genotypeName: string;
  genotype: Genotype;
  C: number;
  layers: number;
  batch: number;
  hw: number;
  classes: number;
  drop_path_prob: number;
  auxiliary_weight: number;
  warmup: number;
  repeat: number;
  seed: number;
  /** Our side: MiB of activations kept before recomputing (absent: the library default). */
  activation_budget_mib?: number;
}

// ---------------------------------------------------------------------------------------
// Our side (worker process)

async function worker(config: TrainWorkerConfig): Promise<void> {
  await import(backendModule(config.backend).href);
  const backend = setBackend(config.backend, { threads: config.threads });
  manualSeed(config.seed);
  const model = new NetworkCIFAR({
    genotype: config.genotype, channels: config.C, layers: config.layers, classes: config.classes, auxiliary: true,
    dropPathProb: config.drop_path_prob, inChannels: 3,
    ...(config.activation_budget_mib === undefined ? {} : { activationBudgetBytes: config.activation_budget_mib * 2 ** 20 }),
  });
  model.train();
  const params = model.parameters();
  const sgd = new SGD(params, { lr: 0.025, momentum: 0.9, weightDecay: 3e-4 });
  const rng = new Random(config.seed + 1);
  const n = config.batch * 3 * config.hw * config.hw;
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = rng.normal();
  const x = fromArray(values, [config.batch, 3, config.hw, config.hw]).keep();
  const labels = new Int32Array(config.batch);
  for (let i = 0; i < config.batch; i++) labels[i] = rng.int(config.classes);

  // The authors' train.py step: zero grads, forward (aux head, drop path), CE + 0.4 CE aux, backward, clip 5, SGD.
  const step = (): { seconds: number; loss: number } => {
    const t0 = performance.now();
    model.zeroGrad();
    const loss = tidy(() => {
      const { logits, logitsAux } = model.forward(x);
      let l = ops.crossEntropy(logits, labels);
      if (logitsAux) l = ops.add(l, ops.mulScalar(ops.crossEntropy(logitsAux, labels), config.auxiliary_weight));
      backward(l);
      return l.item();
    });
    clipGradNorm(params, 5);
    sgd.step();
    return { seconds: (performance.now() - t0) / 1000, loss };
  };

  const samples: number[] = [];
  const flops: number[] = [];
  let peak: ReturnType<typeof measureOurPeak> = null;
  const cpuSamples: number[] = [];
  for (let i = 0; i < config.warmup + config.repeat; i++) {
    const timed = i >= config.warmup;
    if (timed && peak === null) peak = measureOurPeak(backend); // right before the timed steps
    const flops0 = flopCount(backend);
    const cpu0 = processCpuSeconds();
    const s = step();
    if (timed) {
      cpuSamples.push(processCpuSeconds() - cpu0);
      samples.push(s.seconds);
      flops.push(flopCount(backend) - flops0);
    }
    process.stderr.write(`    ours step ${i + 1}/${config.warmup + config.repeat}${timed ? '' : ' (warm-up)'}: ${s.seconds.toFixed(2)} s, loss ${s.loss.toFixed(4)}\n`);
  }
  const memory = backend.memoryStats();
  const mainParameters = model.namedParameters()
    .filter(([name]) => !name.startsWith('auxiliary_head.'))
    .reduce((sum, [, p]) => sum + p.numel, 0);
  const out: StepResult = {
    side: 'ours', version: `${backend.name}${'build' in backend ? ` ${String(backend.build)}` : ''}`, threads: backend.threads, medianS: median(samples), samplesS: samples, cpuSamplesS: cpuSamples,
    parameters: mainParameters, peakRssMiB: peakRssMiB(),
    backendPeakMiB: memory.peakBytes / 2 ** 20, backendReservedMiB: memory.reservedBytes / 2 ** 20, cpuSeconds: processCpuSeconds(),
    ...(peak === null ? {} : { peak, flopsPerStep: median(flops) }),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

// ---------------------------------------------------------------------------------------
// Parent process

const HELP = `usage: npm run bench -- train [options]

Images/s and peak RSS (VmHWM) of training steps of the retraining network: PC_DARTS_cifar
genotype, C=36, 20 layers, 32x32x3, auxiliary head, drop path 0.3; one step = forward, loss
CE + 0.4 CE(aux), backward, clip the gradient norm to 5, SGD (momentum 0.9, weight decay
3e-4). Median of the timed steps after the warm-up steps; every batch size and side in its
own fresh process, one after the other.

options:
  --batches LIST      batch sizes (default 64,96)
  --vs-pytorch        also run the PyTorch implementation (bench/pytorch/train.py)
  --threads N         threads of both sides (default: os.availableParallelism())
  --steps N           timed steps, median reported (default 3)
  --warmup N          untimed steps first (default 2)
  --genotype NAME     a published genotype (default PC_DARTS_cifar)
  --channels N        C (default 36)       --layers N   cells (default 20)
  --drop-path P       drop-path probability (default 0.3)
  --check             run check_fixtures.py first (the search bench does it by default)
  --backend wasm|ref  our kernel backend (default wasm)
  --activation-budget MIB  our side: MiB of activations kept before cells recompute
                      (default: the library's, ${DEFAULT_EVAL_ACTIVATION_BUDGET_BYTES / 2 ** 20}; 0 recomputes all)
  --python PATH       interpreter with torch (default: $PCDARTS_PYTHON or /usr/bin/python3)
  --verbose           also print every timed step`;

/** "64,96" -> [64, 96] (positive integers, duplicates removed, order kept). */
export function parseBatches(text: string): number[] {
  const out: number[] = [];
  for (const part of text.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const n = parsePositiveInt('--batches', part);
    if (!out.includes(n)) out.push(n);
  }
  if (out.length === 0) throw new Error('--batches: no batch size given');
  return out;
}

export async function run(args: readonly string[]): Promise<void> {
  let batches = [64, 96];
  let genotypeName = 'PC_DARTS_cifar';
  let channels = 36;
  let layers = 20;
  let dropPath = 0.3;
  let check = false;
  const options = parseCommon(args, HELP, (flag, value) => {
    switch (flag) {
      case '--batches': batches = parseBatches(value()); return true;
      case '--genotype': genotypeName = value(); return true;
      case '--channels': channels = parsePositiveInt('--channels', value()); return true;
      case '--layers': layers = parsePositiveInt('--layers', value()); return true;
      case '--drop-path': {
        dropPath = Number(value());
        if (!(dropPath >= 0 && dropPath < 1)) throw new Error(`--drop-path: expected a probability in [0, 1), got ${dropPath}`);
        return true;
      }
      case '--check': check = true; return true;
      default: return false;
    }
  });
  if (options === null) return;
  const genotype = publishedGenotype(genotypeName);
  const torch = await preamble(options);
  const withTorch = torch !== null;
  console.log(`network: ${genotypeName}, C=${channels}, ${layers} layers, 32x32x3, 10 classes, auxiliary head (weight 0.4), ` +
    `drop path ${dropPath}; step = forward + backward + clip 5 + SGD; ${options.threads} threads; ` +
    `median of ${options.repeat} steps after ${options.warmup} warm-up; ours: backend ${options.backend}`);
  if (withTorch && check) {
    for (const line of await checkFixtures(options.python, null)) console.log(line);
  }

  const self = fileURLToPath(import.meta.url);
  const script = pytorchScript('train.py');
  const runs: { batch: number; ours: SideRun; torch: SideRun | null }[] = [];
  for (const batch of batches) {
    const id = `b${batch}`;
    const workerConfig: TrainWorkerConfig = {
      ...(options.activationBudgetMiB === null ? {} : { activation_budget_mib: options.activationBudgetMiB }),
      backend: options.backend, threads: options.threads, genotypeName, genotype, C: channels, layers, batch, hw: 32, classes: 10,
      drop_path_prob: dropPath, auxiliary_weight: 0.4, warmup: options.warmup, repeat: options.repeat, seed: 1,
    };
    const ours = await measureSide('ours', id, process.execPath, [...process.execArgv, self, '--worker', JSON.stringify(workerConfig)]);
    const theirs = withTorch
      ? await measureSide('pytorch', id, options.python, [script, JSON.stringify(workerConfig)], threadEnv(options.threads))
      : null;
    runs.push({ batch, ours, torch: theirs });
  }

  const headers = ['batch', 'ours s/step', 'ours img/s', 'ours RSS GiB'];
  if (withTorch) headers.push('torch s/step', 'torch img/s', 'torch RSS GiB', 'time ratio', 'RSS ratio');
  const rows = runs.map(({ batch, ours, torch: theirs }) => {
    const o = ours.result;
    const row = [String(batch), o ? formatSeconds(o.medianS) : 'error', formatRate(batch, o?.medianS), formatGiB(o?.peakRssMiB)];
    if (withTorch) {
      const t = theirs?.result ?? null;
      row.push(t ? formatSeconds(t.medianS) : 'error', formatRate(batch, t?.medianS), formatGiB(t?.peakRssMiB),
        formatRatio(o?.medianS, t?.medianS), formatRatio(o?.peakRssMiB, t?.peakRssMiB));
    }
    return row;
  });
  console.log('');
  console.log(formatTable(headers, rows));
  if (withTorch) console.log('ratio = ours / PyTorch, same run, same thread count (below 1: we are faster / smaller)');
  const fastest = fastestStepLine(runs.map((r) => ({ id: `b${r.batch}`, ours: r.ours.result, torch: r.torch?.result ?? null })));
  if (fastest) console.log(fastest);
  const cpuLine = cpuTimeLine(runs.map((r) => ({ id: `b${r.batch}`, ours: r.ours.result, torch: r.torch?.result ?? null })), options.threads);
  if (cpuLine) console.log(cpuLine);
  const parameters = runs.map((r) => r.ours.result?.parameters ?? r.torch?.result?.parameters).find((p) => p !== undefined);
  if (parameters !== undefined) console.log(`parameters (main network, auxiliary head excluded): ${parameters.toLocaleString('en-US')}`);
  const memory = runs.filter((r) => r.ours.result?.backendPeakMiB !== undefined)
    .map((r) => `b${r.batch} ${formatGiB(r.ours.result?.backendPeakMiB)} live peak / ${formatGiB(r.ours.result?.backendReservedMiB)} reserved`);
  if (memory.length > 0) console.log(`our backend memory (GiB): ${memory.join(', ')}`);
  for (const line of efficiencyLines(runs.map((r) => ({ id: `b${r.batch}`, ours: r.ours.result, torch: r.torch?.result ?? null })))) console.log(line);
  if (genotypeName === 'PC_DARTS_cifar' && channels === 36 && layers === 20 && dropPath === 0.3) {
    console.log(`note: reference (../shared/anchors/pytorch-search.md: the authors' code, PyTorch 1.13, 2 threads, idle machine): ${
      Object.entries(ANCHORS).map(([b, a]) => `batch ${b} ${a.seconds} s/step, ${a.rate} images/s, ${a.gb} GB`).join('; ')}` +
      (withTorch ? '; the ratios above come from this run\'s own PyTorch measurement' : ''));
  }
  const all = runs.flatMap((r) => [r.ours, ...(r.torch ? [r.torch] : [])]);
  for (const line of reportProcesses(all, options.threads)) console.log(line);
  if (options.verbose) for (const line of samplesLines(all)) console.log(line);
  if (withTorch) console.log(`\n${LOAD_REMINDER}`);
  if (all.some((r) => r.error !== null)) process.exitCode = 1;
}

// ---------------------------------------------------------------------------------------
// Worker entry: node dist/bench/train.js --worker '<json>'

runAsWorker<TrainWorkerConfig>(import.meta.url, 'train', worker, reportWorkerError);
