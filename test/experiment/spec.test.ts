/**
 * Experiment specs and trials: bad specs are refused with one line naming the file and the key
 * (status 2 on the command line, nothing created); trial ids are hashes of the settings, not
 * of grid positions, so that a spec with more seeds keeps its trials; an experiment directory
 * refuses another spec's trials and accepts an extension.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { initExperimentDir, loadSpec, planTrials, RunInputError, trialPhases, validateSpec } from '../../src/index.js';
import { assertBadInput, pcdarts } from '../cli/process.js';

const root = mkdtempSync(join(tmpdir(), 'pcdarts-spec-'));
after(() => rmSync(root, { recursive: true, force: true }));

const BASE = {
  name: 'unit',
  dataset: 'fashion-mnist-bundled',
  search: { epochs: 1, 'init-channels': 4, layers: 3, nodes: 2 },
  train: { epochs: 1, 'init-channels': 4, layers: 3 },
  grid: { methods: ['pcdarts', 'darts-v1', 'darts-v2', 'random'], k: [1, 2], edgeNorm: [true, false], seeds: [0, 1] },
};

function specFile(name: string, value: unknown): string {
  const path = join(root, `${name}.json`);
  writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value));
  return path;
}

describe('loadSpec', () => {
  const bad: [string, unknown, RegExp][] = [
    ['not-json', '{"name": ', /not-json\.json: not valid JSON/],
    ['method', { ...BASE, grid: { ...BASE.grid, methods: ['pcdarts', 'enas'] } }, /method\.json: grid\.methods\[1\]: unknown method "enas" \(expected pcdarts, darts-v1, darts-v2, random\)/],
    ['flag', { ...BASE, search: { ...BASE.search, 'learning-rate': 0.1 } }, /flag\.json: search\.learning-rate: not a flag of pcdarts search/],
    ['runner-flag', { ...BASE, train: { seed: 3 } }, /runner-flag\.json: train\.seed: set by the experiment runner/],
    ['seeds', { ...BASE, grid: { ...BASE.grid, seeds: [0, -1] } }, /seeds\.json: grid\.seeds: expected a non-empty list of integers >= 0, got \[0,-1\]/],
    ['no-seeds', { ...BASE, grid: { methods: ['pcdarts'] } }, /no-seeds\.json: grid\.seeds: missing/],
    ['dataset', { ...BASE, dataset: 'mnist' }, /dataset\.json: dataset: expected one of .*fashion-mnist.*, got "mnist"/],
    ['key', { ...BASE, seeds: [1] }, /key\.json: seeds: unknown key/],
    ['random-k', { ...BASE, grid: { ...BASE.grid, methods: [{ method: 'random', k: 2 }] } }, /random-k\.json: grid\.methods\[0\]: a random method has no search/],
    ['value', { ...BASE, search: { epochs: { n: 1 } } }, /value\.json: search\.epochs: expected a number, a string/],
  ];
  for (const [name, value, pattern] of bad) {
    it(`refuses a bad spec (${name}) with one line naming the file and the key`, () => {
      const file = specFile(name, value);
      assert.throws(() => loadSpec(file), (error: Error) => {
        assert.ok(error instanceof RunInputError, String(error));
        assert.ok(!error.message.includes('\n'));
        assert.match(error.message, pattern);
        return true;
      });
    });
  }

  it('refuses a missing file', () => {
    assert.throws(() => loadSpec(join(root, 'absent.json')), /absent\.json: no such spec file/);
  });

  it('on the command line: status 2, one line, and no --out created', async () => {
    const out = join(root, 'never');
    assertBadInput(await pcdarts('experiment', 'run', specFile('cli-bad', { ...BASE, grid: { ...BASE.grid, k: [0] } }), '--out', out), /^pcdarts experiment run: .*cli-bad\.json: grid\.k: expected a non-empty list of integers >= 1, got \[0\]$/);
    assert.equal(existsSync(out), false);
    assertBadInput(await pcdarts('experiment', 'run', specFile('cli-ok', BASE), '--out', out, '--parallel', '0'), /^pcdarts experiment run: --parallel: expected an integer >= 1, got 0$/);
    assert.equal(existsSync(out), false);
    assertBadInput(await pcdarts('experiment', 'run', specFile('cli-ok2', BASE)), /^pcdarts experiment run: .*--out/);
  });
});

describe('planTrials', () => {
  const spec = validateSpec(BASE, 'unit.json');
  const trials = planTrials(spec);

  it('expands the grid: pcdarts over K x edge norm, darts-v1/v2 at K 1 without edge norm, random without a search', () => {
    // pcdarts: 2 K x 2 EN x 2 seeds; darts-v1, darts-v2, random: 2 seeds each.
    assert.equal(trials.length, 8 + 2 + 2 + 2);
    const v2 = trials.filter((t) => t.method === 'darts-v2');
    assert.ok(v2.every((t) => t.k === 1 && !t.edgeNorm && t.order === 2 && t.searchArgs.join(' ').includes('--k 1 --no-edge-norm --order 2')));
    const v1 = trials.filter((t) => t.method === 'darts-v1');
    assert.ok(v1.every((t) => t.k === 1 && !t.edgeNorm && t.order === 1 && !t.searchArgs.includes('--order')));
    const random = trials.filter((t) => t.random);
    assert.ok(random.every((t) => t.searchArgs.length === 0 && t.genotype !== undefined));
    assert.deepEqual(trialPhases(random[0]), ['retrain']);
    assert.deepEqual(trialPhases(v1[0]), ['search', 'retrain']);
    for (const t of trials) {
      assert.match(t.id, /^[0-9a-f]{16}$/);
      assert.deepEqual(t.trainArgs.slice(-2), ['--seed', String(t.seed)]);
    }
    assert.equal(new Set(trials.map((t) => t.id)).size, trials.length);
  });

  it('ids hash the settings, not the grid position: reordering and adding seeds keep them', () => {
    const ids = new Map(trials.map((t) => [`${t.label}/${t.seed}`, t.id]));
    const reordered = planTrials(validateSpec({
      ...BASE, search: { layers: 3, nodes: 2, 'init-channels': 4, epochs: 1 },
      grid: { methods: ['random', 'darts-v2', 'pcdarts', 'darts-v1'], k: [2, 1], edgeNorm: [false, true], seeds: [5, 1, 0] },
    }));
    assert.equal(reordered.length, 21);
    for (const t of reordered) {
      const before = ids.get(`${t.label}/${t.seed}`);
      if (t.seed === 5) assert.equal(before, undefined);
      else assert.equal(t.id, before, `${t.label} seed ${t.seed}`);
    }
    // Another flag value is another trial.
    const other = planTrials(validateSpec({ ...BASE, train: { ...BASE.train, epochs: 2 } }));
    assert.ok(other.every((t) => !trials.some((u) => u.id === t.id)));
  });

  it('samples the random genotypes with the seed, as pcdarts sample does', async () => {
    const random = trials.filter((t) => t.random);
    const { stdout } = await pcdarts('sample', '--seed', String(random[1].seed), '--nodes', '2');
    assert.deepEqual(JSON.parse(stdout), random[1].genotype);
  });
});

describe('initExperimentDir', () => {
  it('writes spec.json and every trial.json; refuses another spec\'s directory; extends with added seeds', () => {
    const dir = join(root, 'exp');
    const spec = validateSpec(BASE, 'unit.json');
    const trials = initExperimentDir(dir, spec);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'spec.json'), 'utf8')).grid.seeds, [0, 1]);
    for (const t of trials) assert.deepEqual(JSON.parse(readFileSync(join(dir, 'trials', t.id, 'trial.json'), 'utf8')), t);
    // Fewer seeds or other flags: refused, nothing changed.
    const specBefore = readFileSync(join(dir, 'spec.json'), 'utf8');
    assert.throws(() => initExperimentDir(dir, validateSpec({ ...BASE, grid: { ...BASE.grid, seeds: [0] } }, 'fewer.json')),
      /--out .*exp: holds trial .* seed 1 \(\w+\) that fewer\.json does not have/);
    assert.throws(() => initExperimentDir(dir, validateSpec({ ...BASE, search: { ...BASE.search, epochs: 2 } }, 'other.json')), RunInputError);
    assert.equal(readFileSync(join(dir, 'spec.json'), 'utf8'), specBefore);
    // More seeds: accepted, the old trials kept.
    const more = initExperimentDir(dir, validateSpec({ ...BASE, grid: { ...BASE.grid, seeds: [0, 1, 2] } }, 'more.json'));
    assert.equal(more.length, 21);
    for (const t of trials) assert.ok(more.some((u) => u.id === t.id));
    // A non-empty directory that is not an experiment: refused.
    const stranger = join(root, 'stranger');
    initExperimentDir(join(stranger, 'sub'), spec);
    assert.throws(() => initExperimentDir(stranger, spec), /not an experiment directory/);
  });
});
