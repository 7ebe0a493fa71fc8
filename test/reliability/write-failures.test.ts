/**
 * Failed writes (a full disk, an I/O error, no permission, a read-only file system) while a
 * run writes its checkpoint, log or report: one line, exit status 2, the previous checkpoint
 * intact, the log whole JSON lines; and the run resumes to the same bits as an uninterrupted
 * one. A full disk is real (a size-limited tmpfs, as root); the others go through the
 * test-only fault hook of the file layer (PCDARTS_TEST_WRITE_FAULT, see src/run/test-hooks.ts).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { readCheckpoint } from '../../src/run/checkpoint.js';
import { comparableRecords, type Finished, pcdarts } from '../cli/process.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** 8 steps per epoch, architecture steps in the second epoch. */
const TINY = [
  '--limit-train', '128', '--batch-size', '8', '--epochs', '2', '--warmup-epochs', '1',
  '--init-channels', '4', '--layers', '3', '--nodes', '2', '--k', '2', '--threads', '2', '--checkpoint-every', '1',
];

const root = mkdtempSync(join(tmpdir(), 'pcdarts-writes-'));
after(() => rmSync(root, { recursive: true, force: true }));

function run(args: string[], env: Record<string, string> = {}): Promise<Finished> {
  const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, PCDARTS_BACKEND: 'wasm', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => { stdout += c; });
  child.stderr.on('data', (c) => { stderr += c; });
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

/** Exit 2, one error line (progress notes aside) matching pattern, no stack trace. */
function assertWriteFailure(result: Finished, pattern: RegExp): void {
  assert.equal(result.code, 2, result.stderr);
  assert.ok(!/\n\s+at /.test(result.stderr), `no stack trace: ${result.stderr}`);
  const lines = result.stderr.split('\n').filter((l) => /cannot/.test(l));
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0]!, pattern);
}

/** The previous checkpoint loads (checksums match) and every log line is whole JSON. */
function assertIntact(dir: string): void {
  assert.ok(readCheckpoint(dir) !== null, 'a checkpoint loads');
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.jsonl'))) {
    const text = readFileSync(join(dir, name), 'utf8');
    assert.ok(text === '' || text.endsWith('\n'), `${name} ends with a whole line`);
    for (const line of text.split('\n').filter((l) => l !== '')) JSON.parse(line);
  }
  assert.deepEqual(readdirSync(join(dir, 'checkpoint')).filter((n) => n.includes('.tmp-')), [], 'no temporary files left');
}

describe('write failures', () => {
  const reference = join(root, 'reference');
  before(async () => {
    const result = await pcdarts('search', ...TINY, '--out', reference);
    assert.equal(result.code, 0, result.stderr);
  });

  it('a full disk (a real 400 KiB tmpfs): exit 2, one line; the checkpoint intact; a copy resumes to the same bits', async (t) => {
    const mount = join(root, 'tmpfs');
    mkdirSync(mount);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=400k', 'tmpfs', mount], { encoding: 'utf8' });
    if (mounted.status !== 0) {
      t.skip(`cannot mount a tmpfs here (${mounted.stderr.trim()}); the fault-hook cases below still run`);
      return;
    }
    try {
      const dir = join(mount, 'run');
      const result = await run(['search', ...TINY, '--out', dir]);
      assertWriteFailure(result, new RegExp(`^pcdarts search: ${dir}/.*: cannot write \\(ENOSPC: no space left on device\\)$`));
      assertIntact(dir);
      // A read-only file system: the report (of an unfinished run, so it takes the lock) is one line, exit 2.
      assert.equal(spawnSync('mount', ['-o', 'remount,ro', mount]).status, 0);
      const report = await run(['report', dir]);
      assert.equal(report.code, 2, report.stderr);
      assert.equal(report.stderr.trim().split('\n').length, 1, report.stderr);
      assert.match(report.stderr, /EROFS/);
      const copy = join(root, 'copied');
      cpSync(dir, copy, { recursive: true });
      const resumed = await run(['search', '--resume', copy]);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.deepEqual(comparableRecords(copy), comparableRecords(reference));
      assert.equal(readFileSync(join(copy, 'genotype.json'), 'utf8'), readFileSync(join(reference, 'genotype.json'), 'utf8'));
    } finally {
      spawnSync('umount', ['-l', mount]);
    }
  });

  /** [what, fault, error line, resume and compare with the uninterrupted run] */
  const faults: [string, string, RegExp, boolean][] = [
    ['ENOSPC in the middle of a log line', 'ENOSPC:log.jsonl:21:7', /log\.jsonl: cannot write \(ENOSPC: no space left on device\)$/, true],
    ['EIO writing a checkpoint\'s state.json', 'EIO:state.json:5', /checkpoint\/state\.json: cannot write \(EIO: i\/o error\)$/, true],
    ['EACCES writing a checkpoint\'s tensors', 'EACCES:safetensors:9:100', /checkpoint\/tensors-\d+\.safetensors: cannot write \(EACCES: permission denied\)$/, false],
    ['EIO writing genotype.json', 'EIO:genotype.json:1', /genotype\.json: cannot write \(EIO: i\/o error\)$/, false],
  ];
  faults.forEach(([what, fault, pattern, resume], index) => {
    it(`${what}: exit 2, one line; the checkpoint intact, the log whole${resume ? '; the resume ends as the uninterrupted run' : ''}`, async () => {
      const dir = join(root, `fault-${index}`); // (no fault substring in the path itself)
      assertWriteFailure(await run(['search', ...TINY, '--out', dir], { PCDARTS_TEST_WRITE_FAULT: fault }), pattern);
      assertIntact(dir);
      if (!resume) return;
      const resumed = await run(['search', '--resume', dir]);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.deepEqual(comparableRecords(dir), comparableRecords(reference));
    });
  });

  it('a report that cannot be written: exit 2, one line, no file left', async () => {
    const out = join(root, 'report.html');
    const result = await run(['report', reference, '--out', out], { PCDARTS_TEST_WRITE_FAULT: 'EACCES:report.html:1:1000' });
    assert.equal(result.code, 2, result.stderr);
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    assert.match(result.stderr, /report\.html: cannot (write|use).*EACCES/);
    assert.ok(!existsSync(out));
    assert.deepEqual(readdirSync(root).filter((n) => n.includes('.tmp-')), []);
  });
});
