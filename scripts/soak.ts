/**
 * npm run soak -- --kills N [--seed S] [--threads T] [--work DIR] [--keep]
 *
 * The random-kill soak of scripts/soak-driver.ts: a small search and a small retrain, each
 * SIGKILLed at N seeded random moments and resumed, then compared bit for bit with an
 * uninterrupted run. Prints one line per kill and a summary; exit status 0 when every resume
 * succeeded, no checkpoint was torn and nothing differs, else 1 (the failures name the moment
 * of the kill before them).
 */
import { Command, InvalidArgumentError } from 'commander';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { soak } from './soak-driver.js';

function integer(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number.');
  return Number(value);
}

const program = new Command('soak')
  .description('SIGKILL a small search and a small retrain at N random moments each, resume, compare bit for bit with an uninterrupted run')
  .requiredOption('--kills <n>', 'kills per run (search and retrain each)', integer)
  .option('--seed <s>', 'seed of the moments', integer, 1)
  .option('--threads <n>', 'kernel threads of the runs (results do not depend on it)', integer, 1)
  .option('--work <dir>', 'scratch folder (default: a new folder under the system temp dir)')
  .option('--keep', 'keep the scratch folder')
  .parse();

const options = program.opts<{ kills: number; seed: number; threads: number; work?: string; keep?: boolean }>();
const work = options.work ?? join(tmpdir(), `pcdarts-soak-${process.pid}`);
const started = performance.now();
const result = await soak({ kills: options.kills, seed: options.seed, threads: options.threads, workDir: work, log: (line) => console.log(line) });
const minutes = ((performance.now() - started) / 60000).toFixed(1);
const points = Object.entries(result.byPoint).map(([k, v]) => `${k} ${v}`).join(', ');
console.log(`soak --kills ${options.kills} --seed ${options.seed}: ${result.kills.length} kills (${points}); rounds ${JSON.stringify(result.rounds)}; `
  + `torn checkpoints ${result.tornCheckpoints}, failed resumes ${result.failedResumes}, differences ${result.differences}; ${minutes} min`);
for (const failure of result.failures) console.log(`FAIL ${failure}`);
console.log(result.failures.length === 0 ? 'PASS' : 'FAIL');
if (!options.keep) rmSync(work, { recursive: true, force: true });
process.exitCode = result.failures.length === 0 ? 0 : 1;
