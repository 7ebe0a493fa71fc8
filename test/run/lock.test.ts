/**
 * The run lock: one holder, a live holder refuses others with a line naming it, a dead
 * holder's lock is taken over, and concurrent takers never both win (real processes).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';

import { RunInputError } from '../../src/run/errors.js';
import { acquireRunLock, LOCK_FILE, processAlive, RunLockedError, runLockHolder, takeOverOtherHostRunLock } from '../../src/run/lock.js';

const root = mkdtempSync(join(tmpdir(), 'pcdarts-lock-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshDir = (): string => {
  const dir = join(root, `d${counter++}`);
  mkdirSync(dir);
  return dir;
};
const LOCK_MODULE = fileURLToPath(new URL('../../src/run/lock.js', import.meta.url));

/** A pid that is certainly dead: a child that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const pid = Number(child.stdout);
  assert.ok(!processAlive(pid));
  return pid;
}

describe('run lock', () => {
  it('is held once: a second taker gets a RunLockedError naming the holder; release frees it', () => {
    const dir = freshDir();
    const lock = acquireRunLock(dir, 'search');
    const record = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8'));
    assert.equal(record.pid, process.pid);
    assert.equal(record.host, hostname());
    assert.equal(record.purpose, 'search');
    assert.ok(!Number.isNaN(Date.parse(record.started)));
    assert.throws(() => acquireRunLock(dir, 'train'), (e: unknown) => e instanceof RunLockedError && e instanceof RunInputError
      && new RegExp(`is in use by pcdarts search \\(pid ${process.pid} on ${hostname()}, since `).test(e.message) && !e.message.includes('\n'));
    assert.equal(runLockHolder(dir)?.pid, process.pid);
    lock.release();
    lock.release();
    assert.ok(!existsSync(join(dir, LOCK_FILE)));
    assert.equal(runLockHolder(dir), null);
    acquireRunLock(dir, 'train').release();
    assert.deepEqual(readdirSync(dir), []);
  });

  it('takes over the lock of a dead pid on this host and says whose it was', () => {
    const dir = freshDir();
    const pid = deadPid();
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ host: hostname(), pid, started: '2026-01-01T00:00:00.000Z', purpose: 'search', token: 'aaaaaaaaaaaaaaaa' }));
    const lock = acquireRunLock(dir, 'search');
    assert.equal(lock.tookOver?.pid, pid);
    assert.equal(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid, process.pid);
    lock.release();
    assert.deepEqual(readdirSync(dir), []);
  });

  it('takes over an unreadable lock (a power cut), and a dead taker\'s takeover file', () => {
    const dir = freshDir();
    writeFileSync(join(dir, LOCK_FILE), '');
    const lock = acquireRunLock(dir, 'search');
    assert.ok(lock.tookOver);
    lock.release();
    const pid = deadPid();
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ host: hostname(), pid, started: 'x', purpose: 'train', token: 'bbbbbbbbbbbbbbbb' }));
    writeFileSync(join(dir, `${LOCK_FILE}.takeover-bbbbbbbbbbbbbbbb`), JSON.stringify({ host: hostname(), pid, started: 'x', purpose: 'train', token: 'cccccccccccccccc' }));
    const again = acquireRunLock(dir, 'search');
    assert.equal(again.tookOver?.pid, pid);
    again.release();
    assert.deepEqual(readdirSync(dir), []);
  });

  it('never takes a live holder\'s lock, nor one from another host', () => {
    const dir = freshDir();
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ host: 'elsewhere.example', pid: deadPid(), started: 'x', purpose: 'train', token: 'dddddddddddddddd' }));
    assert.throws(() => acquireRunLock(dir, 'search'), /in use by pcdarts train \(pid \d+ on elsewhere\.example/);
  });

  it('takeOverOtherHostRunLock removes only another host\'s lock (a dead machine\'s, for a caller that proved it)', () => {
    const dir = freshDir();
    const other = { host: 'elsewhere.example', pid: 4242, started: 'x', purpose: 'train', token: 'eeeeeeeeeeeeeeee' };
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify(other));
    assert.deepEqual(takeOverOtherHostRunLock(dir, 'experiment trial'), other);
    assert.ok(!existsSync(join(dir, LOCK_FILE)));
    assert.deepEqual(readdirSync(dir), [], 'no takeover file left behind');
    const lock = acquireRunLock(dir, 'search');
    assert.equal(takeOverOtherHostRunLock(dir, 'experiment trial'), null, 'a lock of this host is left to acquireRunLock');
    assert.ok(existsSync(join(dir, LOCK_FILE)));
    lock.release();
    assert.equal(takeOverOtherHostRunLock(dir, 'experiment trial'), null, 'no lock: nothing to do');
  });

  it('is a one-line RunInputError for a missing directory', () => {
    assert.throws(() => acquireRunLock(join(root, 'absent'), 'search'), (e: unknown) => e instanceof RunInputError && /no such run directory/.test(e.message));
    assert.ok(!existsSync(join(root, 'absent')));
  });

  it('of 8 processes racing for one stale lock, exactly one wins', async () => {
    for (let round = 0; round < 3; round++) {
      const dir = freshDir();
      writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ host: hostname(), pid: deadPid(), started: 'x', purpose: 'search', token: 'eeeeeeeeeeeeeeee' }));
      const script = `
        const { acquireRunLock } = await import(${JSON.stringify(LOCK_MODULE)});
        const go = Number(process.argv[1]);
        while (Date.now() < go) {}
        try { acquireRunLock(${JSON.stringify(dir)}, 'search'); console.log('won'); setTimeout(() => {}, 1500); }
        catch (e) { console.log('lost ' + e.message); }`;
      const go = String(Date.now() + 1500);
      const results = await Promise.all(Array.from({ length: 8 }, () => new Promise<string>((resolve) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script, go], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (c) => { out += c; });
        child.on('close', () => resolve(out.trim()));
      })));
      assert.equal(results.filter((r) => r === 'won').length, 1, results.join('\n'));
      for (const r of results.filter((x) => x !== 'won')) assert.match(r, /^lost .* is in use by pcdarts search \(pid \d+/);
    }
  });
});
