/**
 * A newcomer's first hour (issue 10), as spawned processes: defaults that protect the user
 * (warm-up error, thread cap, train's inherited defaults and estimate, info on a run), the
 * printed next steps (which run as printed), the authors' flag names, and every error path's
 * exit status and single line.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { assertBadInput, type Finished, INVOCATION, pcdarts } from './process.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'pcdarts-first-hour-'));
after(() => rmSync(root, { recursive: true, force: true }));

const readJson = (path: string): Record<string, any> => JSON.parse(readFileSync(path, 'utf8'));

/** Runs `command args` through a shell-less spawn with this environment and working directory. */
function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Finished> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: options.cwd ?? ROOT, env: { ...process.env, PCDARTS_BACKEND: 'wasm', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => { stdout += c; });
    child.stderr.on('data', (c) => { stderr += c; });
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The words of a printed command after its invocation prefix. */
function argsOf(line: string): string[] {
  const m = new RegExp(`${INVOCATION} (.*)$`).exec(line.trim());
  assert.ok(m, `not a command line: ${line}`);
  return m[1]!.split(' ');
}

describe('defaults that protect the user', () => {
  it('a warm-up at or beyond the epochs is an error that says what to pass, and creates nothing', async () => {
    const out = join(root, 'no-arch-steps');
    assertBadInput(await pcdarts('search', '--epochs', '10', '--out', out),
      /^pcdarts search: --warmup-epochs 15 is not below --epochs 10, so no architecture step would run .*pass --warmup-epochs 3 .*or --epochs 16 or more$/);
    assertBadInput(await pcdarts('search', '--epochs', '15', '--out', out), /--warmup-epochs 15 is not below --epochs 15/);
    assertBadInput(await pcdarts('search', '--epochs', '4', '--warmup-epochs', '4', '--out', out), /pass --warmup-epochs 1 /);
    // The ImageNet recipe warms up for 35 of its 50 epochs.
    assertBadInput(await pcdarts('search', '--network', 'imagenet', '--epochs', '30', '--out', out), /--warmup-epochs 35 is not below --epochs 30.*pass --warmup-epochs 9 /);
    assert.ok(!existsSync(out));
  });
});

describe('a first search, then train, info and test on it', () => {
  const search = join(root, 'search');
  let searched: Finished;
  before(async () => {
    // The authors' flag names, and more threads than there are cores.
    searched = await pcdarts('search', '--limit-train', '128', '--batch_size', '32', '--epochs', '2', '--warmup-epochs', '1',
      '--init_channels', '4', '--layers', '3', '--nodes', '2', '--k', '2', '--learning_rate', '0.05', '--threads', '999', '--out', search);
    assert.equal(searched.code, 0, searched.stderr);
  });

  it('caps --threads at the core count with one warning', () => {
    const warnings = searched.stderr.split('\n').filter((l) => /warning/.test(l));
    assert.deepEqual(warnings, [`pcdarts search: warning: --threads 999 is more than this machine's ${availableParallelism()} cores: using ${availableParallelism()}`]);
    assert.equal(readJson(join(search, 'config.json')).info.threads, availableParallelism());
  });

  it('prints its estimated time before it starts', () => {
    const lines = searched.stderr.split('\n');
    const estimate = lines.findIndex((l) => /^pcdarts search: estimated time: about \d+(\.\d)? (s|min|h|days) on this machine \(2 epochs, the first 1 of warm-up; C4, 3 cells, K 2, 64 \+ 64 images\)$/.test(l));
    assert.ok(estimate >= 0 && estimate < lines.findIndex((l) => /run directory/.test(l)), searched.stderr);
  });

  it('takes the authors\' flag names, printing the pcdarts name of each once', () => {
    const config = readJson(join(search, 'config.json')).config;
    assert.equal(config.batchSize, 32);
    assert.equal(config.initChannels, 4);
    assert.equal(config.lr, 0.05);
    const notes = searched.stderr.split('\n').filter((l) => / note: /.test(l));
    assert.deepEqual(notes, [
      'pcdarts search: note: --batch_size is --batch-size in pcdarts (the authors\' name works too)',
      'pcdarts search: note: --init_channels is --init-channels in pcdarts (the authors\' name works too)',
      'pcdarts search: note: --learning_rate is --lr in pcdarts (the authors\' name works too)',
    ]);
  });

  it('prints the next steps: train at a size that fits, the paper\'s size, the cells and the size', () => {
    const lines = searched.stdout.split('\n');
    const at = lines.indexOf('next steps:');
    assert.ok(at > 0, searched.stdout);
    const steps = lines.slice(at + 1).filter((l) => l.trim() !== '');
    assert.match(steps[0]!, /^ {2}train the genotype at the search's size \(C4, 3 cells, fashion-mnist-bundled\), about .* here:$/);
    assert.deepEqual(argsOf(steps[1]!).slice(0, 3), ['train', search, '--epochs']);
    assert.match(steps[2]!, /^ {2}the paper's size \(C36, 20 cells, 600 epochs\), about .* here:$/);
    assert.deepEqual(argsOf(steps[3]!), ['train', search, '--init-channels', '36', '--layers', '20', '--epochs', '600']);
    assert.deepEqual(argsOf(steps[4]!), ['visualize', search, '--out', `${search}/cells.png`]);
    assert.deepEqual(argsOf(steps[5]!), ['info', search]);
  });

  it('info on the search run describes the network train builds from it (the search\'s size), also as --genotype', async () => {
    const positional = await pcdarts('info', search);
    assert.equal(positional.code, 0, positional.stderr);
    assert.match(positional.stdout, /CIFAR network C4 L3 \(2 nodes per cell\), 1x32x32 input, 10 classes/);
    assert.match(positional.stdout, /at the paper's C36 L20: [\d.]+ M parameters/);
    const flag = await pcdarts('info', '--genotype', search, '--json');
    assert.equal(flag.code, 0, flag.stderr);
    const info = JSON.parse(flag.stdout);
    assert.equal(info.init_channels, 4);
    assert.equal(info.layers, 3);
    assert.equal(info.dataset, 'fashion-mnist-bundled');
    assert.equal(info.in_channels, 1);
  });

  describe('train with the genotype of the run', () => {
    const trained = join(root, 'trained');
    let result: Finished;
    before(async () => {
      // The printed train command, as printed, made short by flags given after it.
      const printed = searched.stdout.split('\n').find((l) => new RegExp(`${INVOCATION} train `).test(l) && !l.includes('--init-channels 36'))!;
      result = await pcdarts(...argsOf(printed), '--epochs', '1', '--limit-train', '64', '--limit-test', '32', '--batch-size', '32', '--threads', '2', '--out', trained);
      assert.equal(result.code, 0, result.stderr);
    });

    it('inherits the run\'s dataset, channels and cells, and says so', () => {
      const config = readJson(join(trained, 'config.json')).config;
      assert.equal(config.dataset, 'fashion-mnist-bundled');
      assert.equal(config.initChannels, 4);
      assert.equal(config.layers, 3);
      assert.equal(config.network, 'cifar');
      assert.match(result.stderr, new RegExp(`^pcdarts train: from the search run ${search}: --network cifar --dataset fashion-mnist-bundled --init-channels 4 --layers 3 \\(flags given override these\\)$`, 'm'));
    });

    it('prints its estimated time before it starts', () => {
      const lines = result.stderr.split('\n');
      const estimate = lines.findIndex((l) => /^pcdarts train: estimated time: about \d+(\.\d)? (s|min|h|days) on this machine \(1 epoch of .* each; C4, 3 cells, 64 images\)$/.test(l));
      const started = lines.findIndex((l) => /run directory/.test(l));
      assert.ok(estimate >= 0 && estimate < started, result.stderr);
    });

    it('prints test, export, info and report as next steps, each of which runs', async () => {
      const lines = result.stdout.split('\n');
      const steps = lines.slice(lines.indexOf('next steps:') + 1).filter((l) => l.trim() !== '');
      const commands = steps.map((l) => argsOf(l.replace(/^.*?: (?=(npm|npx|pcdarts|node) )/, '')));
      assert.deepEqual(commands.map((c) => c[0]), ['test', 'export', 'info', 'report']);
      for (const args of commands) {
        const r = await pcdarts(...args, ...(args[0] === 'export' ? ['--out', join(root, 'model.onnx')] : []));
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
        if (args[0] === 'test') assert.match(r.stderr, new RegExp(`next: export it for inference: ${INVOCATION} export ${trained}`));
      }
    });

    it('test shows its progress when the test split takes a while', async () => {
      const r = await run(process.execPath, [MAIN, 'test', trained, '--limit-test', '96', '--batch-size', '16'], { env: { PCDARTS_TEST_PROGRESS_AFTER_MS: '0' } });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^\[\d+s\] 16\/96 test images \(16%\), ETA \S+$/m);
      assert.match(r.stderr, /^\[\d+s\] 96\/96 test images \(100%\), ETA 0s$/m);
      assert.equal(r.stdout.split('\n').filter((l) => l !== '').length, 1, 'stdout: the result line only');
    });

    it('caps PCDARTS_THREADS at the core count with one warning too', async () => {
      const r = await run(process.execPath, [MAIN, 'test', trained, '--limit-test', '16'], { env: { PCDARTS_THREADS: '999' } });
      assert.equal(r.code, 0, r.stderr);
      const warnings = r.stderr.split('\n').filter((l) => /warning/.test(l));
      assert.deepEqual(warnings, [`pcdarts test: warning: PCDARTS_THREADS=999 is more than this machine's ${availableParallelism()} cores: using ${availableParallelism()}`]);
    });

    it('flags given override the inherited defaults', async () => {
      const out = join(root, 'override');
      const r = await pcdarts('train', search, '--init-channels', '8', '--epochs', '1', '--limit-train', '32', '--limit-test', '16', '--batch-size', '16', '--threads', '2', '--out', out);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(readJson(join(out, 'config.json')).config.initChannels, 8);
      assert.match(r.stderr, /from the search run .*: --network cifar --dataset fashion-mnist-bundled --layers 3 \(flags/);
    });

    it('every hint is in the form that works from where the user stands', async () => {
      const viaNpm = await run('npm', ['run', '--silent', 'pcdarts', '--', 'test', trained, '--limit-test', '16']);
      assert.equal(viaNpm.code, 0, viaNpm.stderr);
      assert.match(viaNpm.stderr, new RegExp(`next: export it for inference: npm run pcdarts -- export ${trained}$`, 'm'));
      const bin = join(root, 'bin');
      mkdirSync(bin, { recursive: true });
      if (!existsSync(join(bin, 'pcdarts'))) symlinkSync(MAIN, join(bin, 'pcdarts'));
      chmodSync(MAIN, 0o755); // what npm does to a bin when it installs or links the package
      const onPath = await run('pcdarts', ['test', trained, '--limit-test', '16'], { cwd: root, env: { PATH: `${bin}:${process.env.PATH}` } });
      assert.equal(onPath.code, 0, onPath.stderr);
      assert.match(onPath.stderr, new RegExp(`next: export it for inference: pcdarts export ${trained}$`, 'm'));
      const elsewhere = await run(process.execPath, [MAIN, 'test', trained, '--limit-test', '16'], { cwd: root });
      assert.equal(elsewhere.code, 0, elsewhere.stderr);
      assert.match(elsewhere.stderr, new RegExp(`next: export it for inference: node ${MAIN} export ${trained}$`, 'm'));
    });
  });
});

describe('the authors\' flag names', () => {
  it('--unrolled is --order 2, --set is --dataset, --report_freq is not needed; each says so once', async () => {
    const out = join(root, 'unrolled');
    const r = await pcdarts('search', '--unrolled', '--set', 'cifar100', '--report_freq', '50', '--epochs', '2', '--warmup-epochs', '2', '--out', out);
    assert.equal(r.code, 2);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    assert.deepEqual(lines.slice(0, 3), [
      'pcdarts search: note: --unrolled is --order 2 in pcdarts (the authors\' name works too)',
      'pcdarts search: note: --set is --dataset in pcdarts (the authors\' name works too)',
      'pcdarts search: note: --report_freq is not needed: pcdarts shows every step on its progress line and logs every step to RUN_DIR/log.jsonl; ignored',
    ]);
    assert.match(lines[3]!, /--warmup-epochs 2 is not below --epochs 2/);
    assert.equal(lines.length, 4);
    assert.ok(!existsSync(out));
  });

  it('a name the command does not have stays an unknown option', async () => {
    assertBadInput(await pcdarts('train', '--unrolled'), /^pcdarts train: unknown option '--unrolled'/);
  });
});

describe('every error is one line and exit status 2', () => {
  const notDir = join(root, 'a-file');
  before(() => writeFileSync(notDir, 'not a directory\n'));

  const cases: [string, string[], RegExp, NodeJS.ProcessEnv?][] = [
    ['unknown flag', ['train', '--bogus'], /^pcdarts train: unknown option '--bogus'/],
    ['bad number', ['train', '--lr', 'fast'], /--lr <x>.*'fast' is invalid.*expected a number/],
    ['missing genotype file', ['info', '/nonexistent/genotype.json'], /^pcdarts info: genotype '\/nonexistent\/genotype.json': expected a published name/],
    ['info without a genotype', ['info'], /^pcdarts info: give a genotype/],
    ['test without a source', ['test'], /^pcdarts test: give a train run directory/],
    ['report of a missing run', ['report', '/nonexistent/run'], /^pcdarts report: .*no such directory/],
    ['ENOTDIR: a run directory under a file', ['search', '--epochs', '2', '--warmup-epochs', '1', '--out', '@NOTDIR@/run'], /^pcdarts search: .*a-file\/run: cannot create the directory: a part of the path is not a directory \(ENOTDIR\)$/],
    ['EPERM: a run directory where nothing may be created', ['search', '--epochs', '2', '--warmup-epochs', '1', '--out', '/sys/pcdarts-run'], /^pcdarts search: \/sys\/pcdarts-run: cannot create the directory: operation not permitted \(EPERM\)$/],
    ['EACCES: a drawing where nothing may be written', ['visualize', 'PC_DARTS_cifar', '-o', '/sys/pcdarts-cells.svg'], /^pcdarts visualize: --out \/sys\/pcdarts-cells.svg: cannot open: permission denied \(EACCES\)$/],
    ['ENOENT: a drawing into a missing directory', ['visualize', 'PC_DARTS_cifar', '-o', '/nonexistent-pcdarts/x.png'], /^pcdarts visualize: --out \/nonexistent-pcdarts\/x.png: cannot open: the directory \/nonexistent-pcdarts does not exist/],
    ['ENOENT: a report into a missing directory', ['report', '@SEARCH@', '-o', '/nonexistent-pcdarts/r.html'], /^pcdarts report: .*\/nonexistent-pcdarts\/r.html.*(does not exist|no such)/],
    ['PCDARTS_THREADS not a number', ['info', 'PC_DARTS_cifar'], /^pcdarts: PCDARTS_THREADS: expected a whole number of threads >= 1 \(or unset for all cores\), got 'many'$/, { PCDARTS_THREADS: 'many' }],
    ['PCDARTS_THREADS zero', ['search', '--epochs', '2', '--warmup-epochs', '1'], /^pcdarts: PCDARTS_THREADS: .*got '0'$/, { PCDARTS_THREADS: '0' }],
    ['PCDARTS_WASM_BUILD unknown', ['train', '--epochs', '1'], /^pcdarts: PCDARTS_WASM_BUILD: expected simd, relaxed-simd, auto \(or unset\), got 'avx'$/, { PCDARTS_WASM_BUILD: 'avx' }],
    ['PCDARTS_WORKER_SPIN_US negative', ['search', '--epochs', '2', '--warmup-epochs', '1'], /^pcdarts: PCDARTS_WORKER_SPIN_US: expected microseconds >= 0 \(or unset for 100\), got '-5'$/, { PCDARTS_WORKER_SPIN_US: '-5' }],
    ['PCDARTS_KERNEL_PROFILE unknown', ['info', 'PC_DARTS_cifar'], /^pcdarts: PCDARTS_KERNEL_PROFILE: expected 1 .*got 'yes'$/, { PCDARTS_KERNEL_PROFILE: 'yes' }],
    ['PCDARTS_BACKEND unknown', ['test', '/nonexistent'], /^pcdarts: PCDARTS_BACKEND: expected wasm or ref \(or unset for wasm\), got 'cuda'$/, { PCDARTS_BACKEND: 'cuda' }],
  ];
  for (const [what, args, pattern, env] of cases) {
    it(what, async () => {
      const resolved = args.map((a) => a.replace('@NOTDIR@', notDir).replace('@SEARCH@', join(root, 'search')));
      const result = await run(process.execPath, [MAIN, ...resolved], { env, cwd: root });
      assertBadInput(result, pattern);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'a stack trace');
    });
  }

  it('never creates a directory it was not asked for', () => {
    assert.ok(!existsSync('/nonexistent-pcdarts'));
    assert.ok(!existsSync('/sys/pcdarts-run'));
    assert.ok(!existsSync(join(root, 'runs')), 'a default run directory was created by a command that failed');
  });
});
