/**
 * Hostile input, fuzzed with a seeded generator (PCDARTS_FUZZ_SEED, default 15; the case count
 * scales with PCDARTS_FUZZ_SCALE, default 1):
 *
 * - every flag of every command given values of the wrong kind and out of range (and bad
 *   positional arguments), most cases in this process through the CLI's own main(), a sample
 *   as real child processes;
 * - every dataset format (idx, idx.gz, CIFAR binary, CIFAR pickle, image files) truncated and
 *   bit-flipped at random offsets, read by the loaders;
 * - every run-directory file (config.json, log.jsonl, checkpoint state.json, safetensors,
 *   genotype.json) truncated and bit-flipped, read by resume, test, export, info and report.
 *
 * Every case must end in exit status 0 (the value or the damage is in fact harmless, e.g. a
 * flipped pixel) or 2 with exactly one line on stderr, never a stack trace or status 1, and
 * must not change any file it was not asked to write. Loader errors must be one line naming
 * the file. The outcome counts are printed as test diagnostics.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';

import type { Command, Option } from 'commander';

import { main, program } from '../../src/cli/main.js';
import { CIFAR10_RECORD_BYTES, CIFAR10_TRAIN_FILES, loadDataset } from '../../src/data/index.js';
import { RunInputError } from '../../src/run/errors.js';
import { SearchRun } from '../../src/run/search.js';
import { TrainRun } from '../../src/run/train.js';
import { makeImageFolder } from '../data/image-fixture.js';
import { pcdarts } from '../cli/process.js';

const SEED = Number(process.env.PCDARTS_FUZZ_SEED ?? 15);
const SCALE = Number(process.env.PCDARTS_FUZZ_SCALE ?? 1);
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const BUNDLED = fileURLToPath(new URL('../../../data/fashion-mnist-subset', import.meta.url));
const PICKLES = fileURLToPath(new URL('../../../test/data/cifar_pickles.py', import.meta.url));

const root = mkdtempSync(join(tmpdir(), 'pcdarts-fuzz-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** mulberry32 */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = generator(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

/** Size, and content hash, of every file under the folders: a change anywhere shows. */
function snapshot(...dirs: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const stat = statSync(path);
      if (stat.isDirectory()) walk(path);
      else out.set(path, createHash('sha1').update(readFileSync(path)).digest('hex'));
    }
  };
  for (const dir of dirs) walk(dir);
  return out;
}
function changes(before: Map<string, string>, after: Map<string, string>): string[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys].filter((k) => before.get(k) !== after.get(k));
}

interface Outcome { code: number; stderr: string }

/** The CLI's main() in this process, stdout and stderr captured. */
async function inProcess(args: string[]): Promise<Outcome> {
  let stderr = '';
  const writeErr = process.stderr.write.bind(process.stderr);
  const writeOut = process.stdout.write.bind(process.stdout);
  process.stderr.write = ((chunk: string | Uint8Array) => { stderr += String(chunk); return true; }) as typeof process.stderr.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  process.exitCode = undefined;
  try {
    const code = await main(args);
    return { code, stderr };
  } finally {
    process.stderr.write = writeErr;
    process.stdout.write = writeOut;
    process.exitCode = undefined;
  }
}

function child(args: string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, PCDARTS_BACKEND: 'wasm' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (c) => { stderr += c; });
    const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
    proc.on('close', (code) => { clearTimeout(timer); resolve({ code: code ?? -1, stderr }); });
  });
}

/** What is wrong with an outcome (null: it keeps the contract). */
function violation(outcome: Outcome): string | null {
  if (/\n\s+at |^\s+at /m.test(outcome.stderr)) return `stack trace: ${outcome.stderr.slice(0, 300)}`;
  if (outcome.code === 0) return null;
  if (outcome.code !== 2) return `exit ${outcome.code}: ${outcome.stderr.trim().slice(0, 300)}`;
  // Warnings before the error line are allowed (e.g. a checkpoint fallback); the error is one line.
  const lines = outcome.stderr.split('\n').filter((l) => l.trim() !== '' && !/warning: /.test(l));
  if (lines.length !== 1) return `${lines.length} lines: ${outcome.stderr.slice(0, 300)}`;
  return null;
}

let slowest: string[] = [];
const tally = { flagCases: 0, childCases: 0, datasetCases: 0, runDirCases: 0, exit0: 0, exit2: 0 };
const failures: string[] = [];

function record(what: string, outcome: Outcome, touched: string[] = []): void {
  const wrong = violation(outcome);
  if (wrong !== null) failures.push(`${what}: ${wrong}`);
  if (touched.length > 0) failures.push(`${what}: changed ${touched.join(', ')}`);
  if (outcome.code === 0) tally.exit0 += 1;
  else if (outcome.code === 2) tally.exit2 += 1;
}

// ------------------------------------------------------------------------------------------
// Fixtures

const SEARCH_RUN = join(root, 'search-run');
const TRAIN_RUN = join(root, 'train-run');
const FILE = join(root, 'a-file.txt');
const EMPTY_DIR = join(root, 'empty-dir');
const SCRATCH = join(root, 'scratch');
const IMAGES = join(root, 'images');
/** Guard for commands that create a run: an existing file as --out stops an accidentally valid case before any work. */
const GUARD = join(root, 'guard-file');

const TINY_SEARCH = ['--limit-train', '64', '--batch-size', '8', '--epochs', '1', '--warmup-epochs', '0', '--init-channels', '4',
  '--layers', '3', '--nodes', '2', '--k', '2', '--threads', '2'];

before(async () => {
  writeFileSync(FILE, 'not what anything expects\n');
  writeFileSync(GUARD, 'guard\n');
  mkdirSync(EMPTY_DIR);
  mkdirSync(SCRATCH);
  const search = await pcdarts('search', ...TINY_SEARCH, '--checkpoint-every', '2', '--out', SEARCH_RUN);
  assert.equal(search.code, 0, search.stderr);
  const train = await pcdarts('train', '--genotype', SEARCH_RUN, '--limit-train', '96', '--valid-portion', '0.25', '--limit-test', '32',
    '--batch-size', '16', '--epochs', '1', '--init-channels', '4', '--layers', '3', '--threads', '2', '--checkpoint-every', '2', '--out', TRAIN_RUN);
  assert.equal(train.code, 0, train.stderr);
  await makeImageFolder(IMAGES, { classes: ['a', 'b'], trainPerClass: 7, valPerClass: 0, minSide: 12, maxSide: 20 });
});

// ------------------------------------------------------------------------------------------
// Flags

const NUMBER_VALUES = ['abc', '', ' ', '1.5', '-1', '-0', '0', '1e999', '-1e999', 'NaN', 'Infinity', '0x10', '1_000', '12abc',
  '99999999999999999999', '٣', '--', '1,2', '.', '-2147483649'];
const PATH_VALUES = (): string[] => ['', join(root, 'no', 'such', 'path'), FILE, EMPTY_DIR, 'x'.repeat(5000), join(FILE, 'below-a-file'), '.', '-'];
const TEXT_VALUES = ['', 'bogus', '{', '{"normal":[]}', '[1,2]', 'PC_DARTS_cifar,', 'null', '\u00e9\u00e8', 'x'.repeat(3000)];

function optionValues(option: Option): string[] {
  const flag = option.long ?? option.short ?? '';
  if (option.argChoices) return ['bogus', '', option.argChoices[0]!.toUpperCase(), `${option.argChoices[0]} `, 'x'.repeat(200)];
  const numeric = (option as unknown as { parseArg?: unknown }).parseArg !== undefined;
  const randomNumbers = [String(-Math.floor(random() * 1e6)), String(Math.floor(random() * 1e12)), (random() * 10 - 5).toExponential(3)];
  if (numeric) return [...NUMBER_VALUES, ...randomNumbers];
  if (/dir|data|resume|out|run|checkpoint|from|init|file|queue/.test(flag)) return [...PATH_VALUES(), ...TEXT_VALUES.slice(0, 3)];
  return [...TEXT_VALUES, ...PATH_VALUES()];
}

/** Arguments that make every case of a command cheap and harmless when its fuzzed value happens to be valid. */
function baseArgs(name: string): string[] {
  switch (name) {
    case 'search': return ['--out', GUARD];
    case 'train': return ['--genotype', SEARCH_RUN, '--out', GUARD];
    case 'test': return ['--run', TRAIN_RUN, '--limit-test', '16'];
    case 'info': return ['--genotype', 'PC_DARTS_cifar'];
    case 'export': return [TRAIN_RUN, '--out', join(SCRATCH, 'fuzz.onnx')];
    case 'prepare': return [IMAGES, '--out', GUARD, '--short-side', '16'];
    case 'visualize': return ['PC_DARTS_cifar', '--out', join(SCRATCH, 'v.svg')];
    case 'report': return [SEARCH_RUN, '--out', join(SCRATCH, 'r.html')];
    default: return [];
  }
}

/** Commands this test knows to be safe in-process; any other (added later) only runs as child processes. */
const IN_PROCESS = new Set(['search', 'train', 'test', 'info', 'export', 'prepare', 'visualize']);

function flagCase(command: Command): string[] {
  const options = command.options.filter((o) => o.long !== '--help' && o.long !== '--version');
  const args = [command.name()];
  const count = 1 + Math.floor(random() * 2);
  for (let i = 0; i < count && options.length > 0; i++) {
    const option = pick(options);
    const flag = option.long ?? option.short!;
    if (option.required || option.optional) args.push(flag, pick(optionValues(option)));
    else args.push(random() < 0.5 ? `${flag}=${pick(['1', 'x', ''])}` : flag, ...(random() < 0.3 ? ['--bogus-flag'] : []));
  }
  if (random() < 0.15) args.push(pick(['--bogus', '-Z', 'stray-positional', '--']));
  // Positional arguments are fuzzed too, for the commands that take one.
  const base = baseArgs(command.name());
  if (command.registeredArguments.length > 0 && random() < 0.3) base[0] = pick([...PATH_VALUES(), ...TEXT_VALUES.slice(0, 4)]);
  return [...args, ...base];
}

describe('fuzz: hostile input', () => {
  it(`flags of every command: wrong kinds and out-of-range values (seed ${SEED}; the commands it does not know run only as processes)`, async (t) => {
    const commands = program().commands.filter((c) => c.name() !== 'help');
    const protectedBefore = snapshot(SEARCH_RUN, TRAIN_RUN, IMAGES, BUNDLED);
    const guardBefore = readFileSync(GUARD, 'utf8');
    const inProcessCommands = commands.filter((c) => IN_PROCESS.has(c.name()));
    const slow: [number, string][] = [];
    for (let i = 0; i < 300 * SCALE; i++) {
      const args = flagCase(pick(inProcessCommands));
      const started = performance.now();
      const outcome = await inProcess(args);
      slow.push([performance.now() - started, args.join(' ').slice(0, 160)]);
      tally.flagCases += 1;
      record(`pcdarts ${args.map((a) => (a.length > 40 ? `${a.slice(0, 20)}...(${a.length})` : JSON.stringify(a))).join(' ')}`, outcome);
    }
    // Real processes: one unknown flag per command (any command, also ones added after this test), and a random sample.
    const spawned: string[][] = commands.filter((c) => !IN_PROCESS.has(c.name())).map((c) => [c.name(), '--bogus-flag', ...baseArgs(c.name())]);
    for (let i = 0; i < 8 * SCALE; i++) spawned.push(flagCase(pick(commands)));
    for (const args of spawned) {
      const outcome = await child(args);
      tally.childCases += 1;
      record(`(process) pcdarts ${args.map((a) => (a.length > 40 ? `${a.slice(0, 20)}...(${a.length})` : JSON.stringify(a))).join(' ')}`, outcome);
    }
    const touched = changes(protectedBefore, snapshot(SEARCH_RUN, TRAIN_RUN, IMAGES, BUNDLED));
    if (touched.length > 0) failures.push(`flag fuzz changed ${touched.join(', ')}`);
    assert.equal(readFileSync(GUARD, 'utf8'), guardBefore);
    t.diagnostic(`flag cases: ${tally.flagCases} in process, ${tally.childCases} as processes`);
    slowest = slow.sort((a, b) => b[0] - a[0]).slice(0, 8).map(([ms, a]) => `${Math.round(ms)} ms: ${a}`);
  });

  // ----------------------------------------------------------------------------------------
  // Dataset files

  /** Truncations and bit flips of `file` at random offsets, each read by `load`; the pristine file is restored after each. */
  function damageCases(file: string, count: number): { name: string; apply: () => void }[] {
    const pristine = readFileSync(file);
    const cases: { name: string; apply: () => void }[] = [];
    for (let i = 0; i < count; i++) {
      const offset = Math.floor(random() * pristine.length);
      if (i % 2 === 0) {
        cases.push({ name: `${basename(file)} truncated to ${offset} bytes`, apply: () => writeFileSync(file, pristine.subarray(0, offset)) });
      } else {
        const bit = 1 << Math.floor(random() * 8);
        cases.push({
          name: `${basename(file)} bit ${bit} flipped at ${offset}`,
          apply: () => { const copy = Buffer.from(pristine); copy[offset] ^= bit; writeFileSync(file, copy); },
        });
      }
    }
    cases.push({ name: `${basename(file)} empty`, apply: () => writeFileSync(file, '') });
    cases.push({ name: `${basename(file)} restored`, apply: () => writeFileSync(file, pristine) });
    return cases;
  }

  /** Loads with the library loader: it returns, or throws one line naming the file. */
  function checkLoad(what: string, file: string, load: () => unknown): void {
    tally.datasetCases += 1;
    try {
      load();
      tally.exit0 += 1;
    } catch (error) {
      tally.exit2 += 1;
      const message = error instanceof Error ? error.message : String(error);
      if (message.includes('\n') || message.trim() === '') failures.push(`${what}: not one line: ${JSON.stringify(message.slice(0, 200))}`);
      else if (!message.includes(basename(file)) && !message.includes(basename(join(file, '..')))) failures.push(`${what}: does not name the file: ${message.slice(0, 200)}`);
      if (!(error instanceof Error) || ['TypeError', 'ReferenceError'].includes(error.name)) failures.push(`${what}: a ${error instanceof Error ? error.name : typeof error} (a bug): ${message.slice(0, 200)}`);
    }
  }

  it('dataset files: idx, idx.gz, CIFAR binary, CIFAR pickle, image files, truncated and bit-flipped', async () => {
    const per = 10 * SCALE;
    // idx.gz (the bundled copy) and raw idx (the same, unzipped).
    const gz = join(root, 'fmnist-gz');
    cpSync(BUNDLED, gz, { recursive: true });
    const raw = join(root, 'fmnist-raw');
    mkdirSync(raw);
    for (const name of readdirSync(BUNDLED).filter((n) => n.endsWith('.gz'))) writeFileSync(join(raw, name.replace(/\.gz$/, '')), gunzipSync(readFileSync(join(BUNDLED, name))));
    for (const [dir, names] of [[gz, readdirSync(gz)], [raw, readdirSync(raw)]] as const) {
      for (const name of names.filter((n) => n.startsWith('t10k'))) {
        for (const c of damageCases(join(dir, name), per)) {
          c.apply();
          checkLoad(c.name, join(dir, name), () => loadDataset({ dataset: 'fashion-mnist', dataDir: dir, split: 'test' }));
        }
      }
    }
    // CIFAR-10 binary: 2 records per batch.
    const bin = join(root, 'cifar-bin');
    mkdirSync(bin);
    const batch = (records: number, seed: number): Uint8Array => {
      const bytes = new Uint8Array(records * CIFAR10_RECORD_BYTES);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + seed) % 256;
      for (let r = 0; r < records; r++) bytes[r * CIFAR10_RECORD_BYTES] = (r + seed) % 10;
      return bytes;
    };
    CIFAR10_TRAIN_FILES.forEach((name, f) => writeFileSync(join(bin, name), batch(2, f)));
    writeFileSync(join(bin, 'test_batch.bin'), batch(3, 7));
    for (const name of ['data_batch_3.bin', 'test_batch.bin']) {
      for (const c of damageCases(join(bin, name), per)) {
        c.apply();
        checkLoad(c.name, join(bin, name), () => loadDataset({ dataset: 'cifar10', dataDir: bin, split: name.startsWith('test') ? 'test' : 'train' }));
      }
    }
    // CIFAR pickles, as Python 3 writes them.
    const pickles = join(root, 'cifar-pickle');
    mkdirSync(pickles);
    execFileSync(process.env.PCDARTS_PYTHON ?? '/usr/bin/python3', [PICKLES, pickles, 'p4', '4']);
    const pickleDir = join(pickles, 'cifar-10-batches-py');
    for (const c of damageCases(join(pickleDir, 'test_batch'), 2 * per)) {
      c.apply();
      checkLoad(c.name, join(pickleDir, 'test_batch'), () => loadDataset({ dataset: 'cifar10', dataDir: pickleDir, split: 'test' }));
    }
    // Image files: decoded as a run decodes them (every image once), through the CLI in this process.
    const imageFiles = readdirSync(join(IMAGES, 'train', 'a')).filter((n) => /\.(png|jpe?g|webp|tiff?|bmp)$/i.test(n));
    const images = join(root, 'images-fuzz');
    for (let i = 0; i < 2 * per; i++) {
      rmSync(images, { recursive: true, force: true });
      cpSync(IMAGES, images, { recursive: true });
      const file = join(images, 'train', 'a', pick(imageFiles));
      const [c] = damageCases(file, 1 + (i % 2)).slice(i % 2);
      c!.apply();
      const before = snapshot(images);
      const out = join(SCRATCH, `prepared-${i}`);
      const outcome = await inProcess(['prepare', images, '--out', out, '--short-side', '16', '--data-workers', '1']);
      tally.datasetCases += 1;
      record(`prepare with ${c!.name}`, outcome, changes(before, snapshot(images)));
      if (outcome.code === 2 && !outcome.stderr.includes(basename(file))) failures.push(`prepare with ${c!.name}: the error does not name the image: ${outcome.stderr.trim()}`);
    }
  });

  // ----------------------------------------------------------------------------------------
  // Run-directory files

  it('run-directory files: config.json, log.jsonl, state.json, safetensors, genotype.json, truncated and bit-flipped', async () => {
    const per = 3 * SCALE;
    const copies = join(root, 'run-copies');
    mkdirSync(copies);
    const latestTensors = (dir: string): string => join('checkpoint', readdirSync(join(dir, 'checkpoint')).filter((n) => n.endsWith('.safetensors')).sort().at(-1)!);
    const targets: { run: string; file: string; readers: ((copy: string) => Promise<Outcome>)[] }[] = [];
    const searchReaders = [
      async (copy: string): Promise<Outcome> => inProcess(['info', '--genotype', copy]),
      async (copy: string): Promise<Outcome> => inProcess(['train', '--genotype', copy, '--out', GUARD]),
      async (copy: string): Promise<Outcome> => libraryResume(() => SearchRun.resume({ dir: copy, given: {}, runtime: { threads: 2 } })),
    ];
    const trainReaders = [
      async (copy: string): Promise<Outcome> => inProcess(['test', '--run', copy, '--limit-test', '16']),
      async (copy: string): Promise<Outcome> => inProcess(['test', '--run', copy, '--last', '--limit-test', '16']),
      async (copy: string): Promise<Outcome> => inProcess(['export', copy, '--out', join(SCRATCH, 'm.onnx')]),
      async (copy: string): Promise<Outcome> => libraryResume(() => TrainRun.resume({ dir: copy, given: {}, runtime: { threads: 2 } })),
    ];
    for (const file of ['config.json', 'log.jsonl', 'genotype.json', 'checkpoint/state.json', latestTensors(SEARCH_RUN)]) targets.push({ run: SEARCH_RUN, file, readers: searchReaders });
    for (const file of ['config.json', 'checkpoint/state.json', 'checkpoint/previous.json', latestTensors(TRAIN_RUN), 'best.safetensors']) targets.push({ run: TRAIN_RUN, file, readers: trainReaders });
    let n = 0;
    for (const target of targets) {
      const pristineCopy = join(copies, `pristine-${n}`);
      cpSync(target.run, pristineCopy, { recursive: true });
      for (const c of damageCases(join(pristineCopy, target.file), per).slice(0, per + 1)) {
        c.apply();
        for (const reader of target.readers) {
          const copy = join(copies, `case-${n++}`);
          cpSync(pristineCopy, copy, { recursive: true });
          const before = snapshot(copy);
          const outcome = await reader(copy);
          tally.runDirCases += 1;
          const isResume = reader === target.readers.at(-1);
          // A resume may write (its log, a fallback); readers must not.
          record(`${basename(target.run)}/${target.file} (${c.name}) read by reader ${target.readers.indexOf(reader)}`, outcome, isResume ? [] : changes(before, snapshot(copy)));
          rmSync(copy, { recursive: true, force: true });
        }
      }
    }
    // The report reads config.json and log.jsonl; a few cases only (each builds a full page).
    for (const file of ['config.json', 'log.jsonl']) {
      const copy = join(copies, `report-${file}`);
      cpSync(SEARCH_RUN, copy, { recursive: true });
      const [c] = damageCases(join(copy, file), 2).slice(1);
      c!.apply();
      const before = snapshot(copy);
      const outcome = await inProcess(['report', copy, '--out', join(SCRATCH, 'report.html')]);
      tally.runDirCases += 1;
      record(`report with ${file} (${c!.name})`, outcome, changes(before, snapshot(copy)));
    }
  });

  after(() => {
    const summary = `fuzz seed ${SEED}: ${tally.flagCases} flag cases in process, ${tally.childCases} as processes, ${tally.datasetCases} dataset cases, `
      + `${tally.runDirCases} run-directory cases; exit 0 ${tally.exit0}, exit 2 ${tally.exit2}; ${failures.length} violations`;
    process.stderr.write(`${summary}\n`);
    if (process.env.PCDARTS_FUZZ_SUMMARY) writeFileSync(process.env.PCDARTS_FUZZ_SUMMARY, `${summary}\n${failures.join('\n')}\nslowest:\n${slowest.join('\n')}\n`);
  });

  it('no case broke the contract', () => {
    assert.deepEqual(failures, []);
  });
});

/** A library resume (no CLI): opens, checks, loads (falling back when the latest checkpoint is damaged) and disposes. */
async function libraryResume(open: () => { dispose(): void }): Promise<Outcome> {
  try {
    open().dispose();
    return { code: 0, stderr: '' };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const isInput = error instanceof RunInputError;
    return { code: isInput ? 2 : 1, stderr: isInput ? `${message}\n` : `${(error as Error).stack ?? message}\n` };
  }
}
