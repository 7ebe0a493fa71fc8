/**
 * Benchmark dispatcher: `node dist/bench/main.js <name> [options]` (npm run bench -- <name>).
 *
 * To add a benchmark, write bench/<name>.ts exporting `description` and `run(args)`
 * (see BenchmarkModule in harness.ts) and add one line to `benchmarks` below.
 * Modules are imported lazily so one benchmark's dependencies never slow another down.
 */
import type { BenchmarkModule } from './harness.js';

const benchmarks: Record<string, () => Promise<BenchmarkModule>> = {
  data: () => import('./data.js'),
  ops: () => import('./ops.js'),
  search: () => import('./search.js'),
  train: () => import('./train.js'),
  kernels: () => import('./kernels.js'),
  queue: () => import('./queue.js'),
};

async function usage(): Promise<string> {
  const lines = ['usage: npm run bench -- <benchmark> [options]   (node dist/bench/main.js <benchmark> --help)', '', 'benchmarks:'];
  const width = Math.max(...Object.keys(benchmarks).map((n) => n.length));
  for (const [name, load] of Object.entries(benchmarks)) {
    lines.push(`  ${name.padEnd(width)}  ${(await load()).description}`);
  }
  return lines.join('\n');
}

async function main(argv: readonly string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    console.log(await usage());
    return;
  }
  const load = benchmarks[name];
  if (!load) {
    console.error(`unknown benchmark '${name}'\n\n${await usage()}`);
    process.exitCode = 2;
    return;
  }
  await (await load()).run(rest);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
