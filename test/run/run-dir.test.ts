import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { RunInputError } from '../../src/run/errors.js';
import { checkNewRunDirectory, isRunDirectory, readRunConfig, type RunConfigFile, RunDirectory } from '../../src/run/run-dir.js';

const root = mkdtempSync(join(tmpdir(), 'pcdarts-rundir-'));
after(() => rmSync(root, { recursive: true, force: true }));
const configFile: RunConfigFile = { pcdarts_run: 1, command: 'search', created: 'now', config: { k: 4 }, runtime: {} };
const inputError = (pattern: RegExp) => (e: unknown): boolean => e instanceof RunInputError && pattern.test(e.message) && !e.message.includes('\n');

describe('run directories', () => {
  it('accepts an absent or empty directory for a new run and refuses anything else', () => {
    checkNewRunDirectory(join(root, 'absent'));
    mkdirSync(join(root, 'empty'));
    checkNewRunDirectory(join(root, 'empty'));
    mkdirSync(join(root, 'full'));
    writeFileSync(join(root, 'full', 'notes.txt'), 'mine');
    assert.throws(() => checkNewRunDirectory(join(root, 'full')), inputError(/not empty/));
    writeFileSync(join(root, 'file'), '');
    assert.throws(() => checkNewRunDirectory(join(root, 'file')), inputError(/not a directory/));
    const run = RunDirectory.create(join(root, 'run'), configFile);
    run.close();
    assert.ok(isRunDirectory(join(root, 'run')));
    assert.throws(() => checkNewRunDirectory(join(root, 'run')), inputError(/already holds a run: continue it with --resume/));
    assert.throws(() => RunDirectory.create(join(root, 'run'), configFile), inputError(/--resume/));
  });

  it('reads config.json back and names what is wrong with a folder that is not a run', () => {
    RunDirectory.create(join(root, 'r2'), configFile).close();
    assert.deepEqual(readRunConfig(join(root, 'r2')), configFile);
    assert.throws(() => readRunConfig(join(root, 'r2'), 'train'), inputError(/is a 'search' run, not a 'train' run/));
    assert.throws(() => readRunConfig(join(root, 'nothing')), inputError(/no such directory/));
    assert.throws(() => readRunConfig(join(root, 'full')), inputError(/is not a run directory/));
    mkdirSync(join(root, 'bad'));
    writeFileSync(join(root, 'bad', 'config.json'), '{"pcdarts_run": 1,');
    assert.throws(() => readRunConfig(join(root, 'bad')), inputError(/not valid JSON/));
    writeFileSync(join(root, 'bad', 'config.json'), '{"something": "else"}');
    assert.throws(() => readRunConfig(join(root, 'bad')), inputError(/not a pcdarts run configuration/));
  });

  it('appends JSON lines, reports their lengths and cuts them back to a recorded length', () => {
    const run = RunDirectory.create(join(root, 'logs'), configFile);
    run.append({ type: 'step', step: 0 });
    run.append({ g: 1 }, 'genotypes.jsonl');
    const sizes = run.syncLogs(['log.jsonl', 'genotypes.jsonl', 'absent.jsonl']);
    run.append({ type: 'step', step: 1 });
    run.append({ g: 2 }, 'genotypes.jsonl');
    run.close();
    assert.deepEqual(sizes, { 'log.jsonl': 25, 'genotypes.jsonl': 8, 'absent.jsonl': 0 });
    const reopened = RunDirectory.open(join(root, 'logs'), 'search');
    reopened.truncateLogs(sizes);
    reopened.append({ type: 'step', step: 1, again: true });
    reopened.close();
    assert.equal(readFileSync(join(root, 'logs', 'log.jsonl'), 'utf8'),
      '{"type":"step","step":0}\n{"type":"step","step":1,"again":true}\n');
    assert.equal(readFileSync(join(root, 'logs', 'genotypes.jsonl'), 'utf8'), '{"g":1}\n');
  });
});
