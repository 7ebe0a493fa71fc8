/**
 * `pcdarts sample --seed S [--count N] [--nodes N]`: genotypes drawn uniformly from the search
 * space (the random-architecture baseline), one JSON line each on stdout, in the fields and
 * order of genotype.json. Exit statuses: 0 done, 2 bad input.
 */
import { Command, Option } from 'commander';

import { genotypeToJSONLine, sampleGenotypes } from '../darts/sample.js';
import { parseInteger } from './search.js';

export function sampleCommand(): Command {
  return new Command('sample')
    .description('print genotypes drawn uniformly from the search space (2 distinct inputs per node, 7 operations without none), one JSON line each')
    .addOption(new Option('--seed <n>', 'random seed: the same seed prints the same genotypes').argParser(parseInteger).makeOptionMandatory())
    .addOption(new Option('--count <n>', 'genotypes to print (the first n of a longer list are the same)').argParser(parseInteger).default(1))
    .addOption(new Option('--nodes <n>', 'intermediate nodes per cell').argParser(parseInteger).default(4))
    .action((options: { seed: number; count: number; nodes: number }) => {
      const err = (line: string): void => { process.stderr.write(`pcdarts sample: ${line}\n`); };
      for (const [flag, value, min] of [['--seed', options.seed, 0], ['--count', options.count, 1], ['--nodes', options.nodes, 1]] as const) {
        if (value < min) {
          err(`${flag}: expected an integer >= ${min}, got ${value}`);
          process.exitCode = 2;
          return;
        }
      }
      process.stdout.write(sampleGenotypes(options.seed, options.count, options.nodes).map(genotypeToJSONLine).join(''));
    });
}
