import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import '../../src/kernels/ref/backend.js';
import { setBackend } from '../../src/kernels/registry.js';
import { BatchNorm2d, Conv2d } from '../../src/nn/layers.js';
import { Sequential } from '../../src/nn/module.js';
import { Adam, SGD } from '../../src/nn/optim.js';
import {
  CHECKPOINT_DIR, CHECKPOINT_STATE_FILE, hasCheckpoint, loadModuleTensors, moduleTensors, optimizerStateFrom,
  optimizerTensors, readCheckpoint, writeCheckpoint,
} from '../../src/run/checkpoint.js';
import { RunInputError } from '../../src/run/errors.js';
import { TEMPORARY_MARKER, writeFileAtomic } from '../../src/run/files.js';
import { fromArray } from '../../src/tensor/tensor.js';

setBackend('ref');
const root = mkdtempSync(join(tmpdir(), 'pcdarts-checkpoint-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshDir = (): string => join(root, `run-${counter++}`);

describe('writeFileAtomic', () => {
  it('replaces the file and leaves no temporary file behind', () => {
    const dir = freshDir();
    writeFileAtomic(join(root, 'x.json'), 'first');
    writeFileAtomic(join(root, 'x.json'), 'second');
    assert.equal(readFileSync(join(root, 'x.json'), 'utf8'), 'second');
    assert.deepEqual(readdirSync(root).filter((n) => n.includes(TEMPORARY_MARKER)), []);
    assert.ok(!existsSync(dir));
  });
});

describe('checkpoints', () => {
  it('round-trips tensors of every dtype and the JSON state; serials grow; the previous checkpoint is kept, older ones go', () => {
    const dir = freshDir();
    assert.equal(readCheckpoint(dir), null);
    assert.equal(hasCheckpoint(dir), false);
    const tensors = (v: number): [string, { dtype: 'F32' | 'F64' | 'I64'; shape: number[]; values: number[] }][] => [
      ['a', { dtype: 'F32', shape: [2, 2], values: [v, 1.5, -2, 0.1] }],
      ['b', { dtype: 'F64', shape: [1], values: [v + 0.123456789012345] }],
      ['c', { dtype: 'I64', shape: [1], values: [v * 1000] }],
    ];
    assert.equal(writeCheckpoint(dir, { tensors: tensors(1), state: { position: 1 } }), 1);
    assert.equal(writeCheckpoint(dir, { tensors: tensors(2), state: { position: 2, nested: { s: [1, 2] } } }), 2);
    const loaded = readCheckpoint<{ position: number; nested: { s: number[] } }>(dir);
    assert.ok(loaded);
    assert.equal(loaded.serial, 2);
    assert.deepEqual(loaded.state, { position: 2, nested: { s: [1, 2] } });
    assert.deepEqual(Array.from(loaded.tensors.get('a')!.values), [2, 1.5, -2, Math.fround(0.1)]);
    assert.deepEqual(loaded.tensors.get('a')!.shape, [2, 2]);
    assert.equal(loaded.tensors.get('b')!.values[0], 2.123456789012345);
    assert.equal(loaded.tensors.get('c')!.values[0], 2000);
    assert.deepEqual(readdirSync(join(dir, CHECKPOINT_DIR)).sort(), ['previous.json', 'state.json', 'tensors-000001.safetensors', 'tensors-000002.safetensors']);
    writeCheckpoint(dir, { tensors: tensors(3), state: { position: 3 } });
    assert.deepEqual(readdirSync(join(dir, CHECKPOINT_DIR)).sort(), ['previous.json', 'state.json', 'tensors-000002.safetensors', 'tensors-000003.safetensors']);
  });

  it('ignores the debris of a write killed before its commit (state.json is the marker)', () => {
    const dir = freshDir();
    writeCheckpoint(dir, { tensors: [['w', { dtype: 'F32', shape: [1], values: [7] }]], state: { n: 1 } });
    const checkpointDir = join(dir, CHECKPOINT_DIR);
    // Killed after the next tensor file was renamed into place, while state.json was half written.
    writeFileSync(join(checkpointDir, 'tensors-000002.safetensors'), 'garbage');
    writeFileSync(join(checkpointDir, `${CHECKPOINT_STATE_FILE}${TEMPORARY_MARKER}123-1`), '{"pcdarts_check');
    const loaded = readCheckpoint<{ n: number }>(dir);
    assert.equal(loaded?.serial, 1);
    assert.deepEqual(loaded?.state, { n: 1 });
    assert.equal(loaded?.tensors.get('w')?.values[0], 7);
    // The next checkpoint removes the debris (and takes a serial above it).
    writeCheckpoint(dir, { tensors: [['w', { dtype: 'F32', shape: [1], values: [8] }]], state: { n: 2 } });
    assert.deepEqual(readdirSync(checkpointDir).sort(), ['previous.json', 'state.json', 'tensors-000001.safetensors', 'tensors-000003.safetensors']);
    assert.equal(readCheckpoint(dir)?.tensors.get('w')?.values[0], 8);
  });

  it('detects a corrupt tensor file or state file', () => {
    const dir = freshDir();
    writeCheckpoint(dir, { tensors: [['w', { dtype: 'F32', shape: [4], values: [1, 2, 3, 4] }]], state: {} });
    const tensorPath = join(dir, CHECKPOINT_DIR, 'tensors-000001.safetensors');
    const bytes = readFileSync(tensorPath);
    bytes[bytes.length - 1] ^= 0xff;
    writeFileSync(tensorPath, bytes);
    assert.throws(() => readCheckpoint(dir), (e: unknown) => e instanceof RunInputError && /corrupt/.test(e.message));
    writeFileSync(join(dir, CHECKPOINT_DIR, CHECKPOINT_STATE_FILE), '{"truncated');
    assert.throws(() => readCheckpoint(dir), (e: unknown) => e instanceof RunInputError && /corrupt checkpoint state/.test(e.message));
  });

  it('saves and restores module state (batch-norm statistics included) and optimiser state', () => {
    const dir = freshDir();
    const make = (): Sequential => new Sequential(new Conv2d(1, 2, 1), new BatchNorm2d(2));
    const a = make();
    a.stateEntries().forEach((e, i) => e.tensor.data.fill(e.dtype === 'I64' ? 7 : i + 0.5));
    const params = a.parameters();
    for (const p of params) p.grad = fromArray(new Float32Array(p.numel).fill(0.25), p.shape).keep();
    const sgd = new SGD(params, { lr: 0.1, momentum: 0.9 });
    const adam = new Adam(params, { lr: 0.01 });
    sgd.step();
    adam.step();
    adam.step();
    writeCheckpoint(dir, {
      tensors: [...moduleTensors('model.', a), ...optimizerTensors('sgd.', sgd.stateDict()), ...optimizerTensors('adam.', adam.stateDict())],
      state: {},
    });
    const loaded = readCheckpoint(dir)!;
    assert.equal(loaded.tensors.get('model.1.num_batches_tracked')?.dtype, 'I64');
    const b = make();
    loadModuleTensors('model.', b, loaded.tensors);
    assert.deepEqual(b.stateEntries().map((e) => Array.from(e.tensor.data)), a.stateEntries().map((e) => Array.from(e.tensor.data)));
    const sgdB = new SGD(b.parameters(), { lr: 0.1, momentum: 0.9 });
    sgdB.loadStateDict(optimizerStateFrom('sgd.', loaded.tensors));
    assert.deepEqual([...sgdB.stateDict().keys()], [...sgd.stateDict().keys()]);
    const adamB = new Adam(b.parameters(), { lr: 0.01 });
    adamB.loadStateDict(optimizerStateFrom('adam.', loaded.tensors));
    assert.equal(adamB.stateDict().get('step')?.[0], 2);
    assert.deepEqual(Array.from(adamB.stateDict().get('exp_avg.0')!), Array.from(adam.stateDict().get('exp_avg.0')!));
  });
});

describe('checkpoint fallback', () => {
  const write = (dir: string, v: number): number => writeCheckpoint(dir, { tensors: [['w', { dtype: 'F32', shape: [3], values: [v, v, v] }]], state: { v } });
  const damages: [string, (dir: string) => void][] = [
    ['a flipped byte in the tensor file', (dir) => {
      const path = join(dir, CHECKPOINT_DIR, 'tensors-000002.safetensors');
      const bytes = readFileSync(path);
      bytes[bytes.length - 5] ^= 0x10;
      writeFileSync(path, bytes);
    }],
    ['a truncated tensor file', (dir) => {
      const path = join(dir, CHECKPOINT_DIR, 'tensors-000002.safetensors');
      writeFileSync(path, readFileSync(path).subarray(0, 20));
    }],
    ['a missing tensor file', (dir) => rmSync(join(dir, CHECKPOINT_DIR, 'tensors-000002.safetensors'))],
    ['a flipped digit in state.json (still valid JSON)', (dir) => {
      const path = join(dir, CHECKPOINT_DIR, CHECKPOINT_STATE_FILE);
      writeFileSync(path, readFileSync(path, 'utf8').replace('"v":2', '"v":7'));
    }],
    ['a truncated state.json', (dir) => {
      const path = join(dir, CHECKPOINT_DIR, CHECKPOINT_STATE_FILE);
      writeFileSync(path, readFileSync(path).subarray(0, 40));
    }],
    ['a missing state.json', (dir) => rmSync(join(dir, CHECKPOINT_DIR, CHECKPOINT_STATE_FILE))],
  ];

  for (const [what, damage] of damages) {
    it(`falls back to the previous checkpoint on ${what}, naming the file; the next write keeps the good one`, () => {
      const dir = freshDir();
      write(dir, 1);
      write(dir, 2);
      damage(dir);
      const listing = readdirSync(join(dir, CHECKPOINT_DIR)).sort();
      // Without fallback (test, export): a one-line error naming the damaged file.
      assert.throws(() => readCheckpoint(dir), (e: unknown) => e instanceof RunInputError && !e.message.includes('\n')
        && /(tensors-000002\.safetensors|state\.json): /.test(e.message));
      const loaded = readCheckpoint<{ v: number }>(dir, { fallback: true })!;
      assert.equal(loaded.state.v, 1);
      assert.equal(loaded.serial, 1);
      assert.equal(loaded.tensors.get('w')!.values[0], 1);
      assert.ok(loaded.fallback);
      assert.match(loaded.fallback.file, /(tensors-000002\.safetensors|state\.json)$/);
      assert.ok(!loaded.fallback.reason.includes('\n'));
      assert.deepEqual(readdirSync(join(dir, CHECKPOINT_DIR)).sort(), listing, 'reading changed nothing');
      // The run goes on from checkpoint 1: the next write keeps 1 as the previous one, not the damaged 2.
      const serial = writeCheckpoint(dir, { tensors: [['w', { dtype: 'F32', shape: [3], values: [3, 3, 3] }]], state: { v: 3 } }, { previous: loaded });
      assert.equal(readCheckpoint<{ v: number }>(dir)!.state.v, 3);
      rmSync(join(dir, CHECKPOINT_DIR, `tensors-${String(serial).padStart(6, '0')}.safetensors`));
      assert.equal(readCheckpoint<{ v: number }>(dir, { fallback: true })!.state.v, 1);
    });
  }

  it('both damaged: one-line error, nothing deleted', () => {
    const dir = freshDir();
    write(dir, 1);
    write(dir, 2);
    rmSync(join(dir, CHECKPOINT_DIR, 'tensors-000002.safetensors'));
    const first = join(dir, CHECKPOINT_DIR, 'tensors-000001.safetensors');
    const bytes = readFileSync(first);
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(first, bytes);
    const listing = readdirSync(join(dir, CHECKPOINT_DIR)).sort();
    assert.throws(() => readCheckpoint(dir, { fallback: true }), (e: unknown) => e instanceof RunInputError && !e.message.includes('\n')
      && /no intact checkpoint to resume from: .*tensors-000002\.safetensors: missing.*previous: .*tensors-000001\.safetensors: corrupt/.test(e.message));
    assert.deepEqual(readdirSync(join(dir, CHECKPOINT_DIR)).sort(), listing);
  });

  it('a write killed after previous.json and before state.json still loads the last commit', () => {
    const dir = freshDir();
    write(dir, 1);
    write(dir, 2);
    // What the protocol leaves then: previous.json = state.json = checkpoint 2, tensors-3 written but not named.
    writeFileSync(join(dir, CHECKPOINT_DIR, 'previous.json'), readFileSync(join(dir, CHECKPOINT_DIR, CHECKPOINT_STATE_FILE)));
    writeFileSync(join(dir, CHECKPOINT_DIR, 'tensors-000003.safetensors'), 'half');
    assert.equal(readCheckpoint<{ v: number }>(dir, { fallback: true })!.state.v, 2);
    assert.equal(write(dir, 4), 4);
    assert.equal(readCheckpoint<{ v: number }>(dir)!.state.v, 4);
  });
});
