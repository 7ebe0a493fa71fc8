/**
 * The run lock and the checkpoint fallback as a user meets them (spawned CLI processes):
 * a second writer of a running search is refused with one line naming the holder; after a
 * SIGKILL the resume takes the stale lock over and says so; a damaged latest checkpoint makes
 * the resume fall back to the previous one and still end bit for bit like an uninterrupted
 * run; two damaged checkpoints are one line, exit 2, nothing changed.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { assertBadInput, comparableRecords, pcdarts, readLog, start, treeHashes, waitFor } from '../cli/process.js';

/** 8 steps per epoch, architecture steps in the second epoch. */
const TINY = [
  '--limit-train', '128', '--batch-size', '8', '--epochs', '2', '--warmup-epochs', '1',
  '--init-channels', '4', '--layers', '3', '--nodes', '2', '--k', '2', '--threads', '2', '--checkpoint-every', '1',
];

const root = mkdtempSync(join(tmpdir(), 'pcdarts-guards-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Starts a search into dir and SIGKILLs it once the log shows `steps` steps. */
async function killAfter(dir: string, steps: number): Promise<void> {
  const { child, done } = start(['search', ...TINY, '--out', dir]);
  await waitFor(() => readLog(dir).filter((r) => r.type === 'step').length >= steps, `${steps} steps`);
  child.kill('SIGKILL');
  await done;
}

const tensorFiles = (dir: string): string[] => readdirSync(join(dir, 'checkpoint')).filter((n) => n.endsWith('.safetensors')).sort();

describe('one writer per run directory; checkpoint fallback (CLI)', () => {
  const reference = join(root, 'reference');
  before(async () => {
    const result = await pcdarts('search', ...TINY, '--out', reference);
    assert.equal(result.code, 0, result.stderr);
  });

  it('refuses a second writer of a running search (resume, report) naming the holder; a dead holder\'s lock is taken over', async () => {
    const dir = join(root, 'locked');
    // Long enough to be still running while the others try.
    const { child, done } = start(['search', ...TINY, '--epochs', '40', '--out', dir]);
    await waitFor(() => readLog(dir).filter((r) => r.type === 'step').length >= 2, '2 steps');
    const holder = new RegExp(`is in use by pcdarts search \\(pid ${child.pid} on `);
    assertBadInput(await pcdarts('search', '--resume', dir, '--threads', '2'), holder);
    assertBadInput(await pcdarts('train', '--resume', dir), /is a 'search' run, not a 'train' run/);
    assertBadInput(await pcdarts('report', dir), holder);
    // A reader that writes nothing into the run needs no lock.
    const elsewhere = await pcdarts('report', dir, '--out', join(root, 'elsewhere.html'));
    assert.equal(elsewhere.code, 0, elsewhere.stderr);
    assert.equal(child.exitCode, null, 'the search still runs');
    child.kill('SIGKILL');
    await done;
    assert.ok(readdirSync(dir).includes('run.lock'), 'SIGKILL leaves the lock');
    const report = await pcdarts('report', dir);
    assert.equal(report.code, 0, report.stderr);
    assert.ok(!readdirSync(dir).includes('run.lock'), 'the report took the stale lock over and released it');
  });

  it('falls back to the previous checkpoint when the latest tensor file has a flipped byte, and ends as the uninterrupted run', async () => {
    const dir = join(root, 'flipped');
    await killAfter(dir, 11);
    const files = tensorFiles(dir);
    assert.equal(files.length, 2, files.join());
    const latest = join(dir, 'checkpoint', files[1]!);
    const bytes = readFileSync(latest);
    bytes[Math.floor(bytes.length / 2)] ^= 0x40;
    writeFileSync(latest, bytes);
    const resumed = await pcdarts('search', '--resume', dir, '--threads', '2');
    assert.equal(resumed.code, 0, resumed.stderr);
    const warnings = resumed.stderr.split('\n').filter((l) => l.includes('warning:') && !l.includes('run lock'));
    assert.equal(warnings.length, 1, resumed.stderr);
    assert.match(warnings[0]!, new RegExp(`${files[1]}: corrupt.*resuming from the previous checkpoint`));
    assert.match(resumed.stderr, /warning: took over the run lock of pcdarts search \(pid \d+ on .*no longer running/);
    const resume = readLog(dir).find((r) => r.type === 'resume')!;
    assert.ok((resume.took_over_lock as { pid: number }).pid > 0);
    assert.match((resume.checkpoint_fallback as { file: string }).file, new RegExp(`${files[1]}$`));
    assert.ok(!readdirSync(dir).includes('run.lock'), 'the lock is released at the end');
    assert.deepEqual(comparableRecords(dir), comparableRecords(reference));
    assert.equal(readFileSync(join(dir, 'genotype.json'), 'utf8'), readFileSync(join(reference, 'genotype.json'), 'utf8'));
  });

  it('both checkpoints damaged: one line, exit 2, nothing changed', async () => {
    const dir = join(root, 'both');
    await killAfter(dir, 5);
    rmSync(join(dir, 'run.lock'), { force: true }); // the dead process's lock is taken over anyway; keep the snapshot simple
    const [older, latest] = tensorFiles(dir);
    writeFileSync(join(dir, 'checkpoint', latest!), readFileSync(join(dir, 'checkpoint', latest!)).subarray(0, 100));
    rmSync(join(dir, 'checkpoint', older!));
    const before = treeHashes(dir);
    assertBadInput(await pcdarts('search', '--resume', dir, '--threads', '2'), /no intact checkpoint to resume from: .*truncated|no intact checkpoint to resume from: .*corrupt/);
    assert.deepEqual(treeHashes(dir), before);
  });
});
