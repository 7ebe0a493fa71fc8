/**
 * Test-only hooks for the reliability tests and the soak (npm run soak), inert unless their
 * environment variable is set in the process:
 *
 *   PCDARTS_TEST_KILL_AT=POINT:N   SIGKILL this process the N-th time (1-based) it reaches POINT
 *   PCDARTS_TEST_KILL_LOG=FILE     before that kill, append one JSON line saying where (point, n, detail)
 *   PCDARTS_TEST_COUNT_POINTS=FILE at exit, write how many times each point was reached (JSON)
 *   PCDARTS_TEST_WRITE_FAULT=CODE:SUBSTRING:N[:BYTES]
 *                                  the N-th write (1-based) into a file whose path contains SUBSTRING
 *                                  writes BYTES bytes (default 0) and fails with errno CODE (EIO, ENOSPC, ...)
 *
 * Points: forward, backward, optimizer-step (search and train steps), log-write (between the two
 * halves of a log line), checkpoint-write (inside every file write of a checkpoint and between
 * its commit steps), file-write (other run files: genotype.json, config.json, ...), report-write.
 */
import { appendFileSync, writeFileSync } from 'node:fs';

export const TEST_POINTS = ['forward', 'backward', 'optimizer-step', 'log-write', 'checkpoint-write', 'file-write', 'report-write'] as const;
export type TestPoint = (typeof TEST_POINTS)[number];

interface KillPlan { readonly point: string; readonly n: number; readonly log: string | undefined }
interface FaultPlan { readonly code: string; readonly substring: string; readonly n: number; readonly bytes: number }

function parseKill(): KillPlan | null {
  const spec = process.env.PCDARTS_TEST_KILL_AT;
  if (spec === undefined || spec === '') return null;
  const match = /^([a-z-]+):(\d+)$/.exec(spec);
  if (!match) throw new Error(`PCDARTS_TEST_KILL_AT=${spec}: expected POINT:N`);
  return { point: match[1]!, n: Number(match[2]), log: process.env.PCDARTS_TEST_KILL_LOG };
}

function parseFault(): FaultPlan | null {
  const spec = process.env.PCDARTS_TEST_WRITE_FAULT;
  if (spec === undefined || spec === '') return null;
  const match = /^(E[A-Z]+):([^:]+):(\d+)(?::(\d+))?$/.exec(spec);
  if (!match) throw new Error(`PCDARTS_TEST_WRITE_FAULT=${spec}: expected CODE:SUBSTRING:N[:BYTES]`);
  return { code: match[1]!, substring: match[2]!, n: Number(match[3]), bytes: Number(match[4] ?? 0) };
}

const kill = parseKill();
const fault = parseFault();
const countsFile = process.env.PCDARTS_TEST_COUNT_POINTS || null;
const counts: Record<string, number> | null = countsFile === null ? null : {};
if (countsFile !== null) process.on('exit', () => writeFileSync(countsFile, JSON.stringify(counts)));
let killCount = 0;
let faultCount = 0;

/** Reached a moment where a kill may be asked for (no-op unless PCDARTS_TEST_KILL_AT or _COUNT_POINTS is set). */
export function testPoint(point: TestPoint, detail = ''): void {
  if (counts !== null) counts[point] = (counts[point] ?? 0) + 1;
  if (kill === null || kill.point !== point) return;
  killCount += 1;
  if (killCount !== kill.n) return;
  if (kill.log !== undefined) appendFileSync(kill.log, `${JSON.stringify({ point, n: kill.n, detail })}\n`);
  process.kill(process.pid, 'SIGKILL');
}

/**
 * The injected failure of this write into `path`, if PCDARTS_TEST_WRITE_FAULT asks for one:
 * how many bytes to write first and the errno error to throw; else null.
 */
export function testWriteFault(path: string, length: number): { bytes: number; error: NodeJS.ErrnoException } | null {
  if (fault === null || !path.includes(fault.substring)) return null;
  faultCount += 1;
  if (faultCount !== fault.n) return null;
  const messages: Record<string, string> = {
    EIO: 'i/o error', ENOSPC: 'no space left on device', EACCES: 'permission denied', EROFS: 'read-only file system', EDQUOT: 'disk quota exceeded',
  };
  const error = new Error(`${fault.code}: ${messages[fault.code] ?? 'injected failure'}, write`) as NodeJS.ErrnoException;
  error.code = fault.code;
  error.syscall = 'write';
  return { bytes: Math.min(fault.bytes, length), error };
}
