/**
 * A synthetic but well-formed run directory (the format src/run writes): config.json,
 * log.jsonl with step and epoch records, genotype.json, genotypes.jsonl. The architecture
 * parameters drift with the epochs so that the derived genotype changes along the way.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { edgeCount, genotypeToJSON } from '../../src/darts/genotype.js';
import { deriveGenotype, nodeSoftmax, softmaxRows } from '../../src/darts/genotype-derive.js';

export interface FixtureRunOptions {
  epochs?: number;
  stepsPerEpoch?: number;
  nodes?: number;
  /** 'train': no architecture in the epoch records, test accuracy and a final test record. */
  kind?: 'search' | 'train';
  /** Append half a record without a newline, as a run killed mid-write leaves it. */
  truncated?: boolean;
}

/** Deterministic pseudo-random numbers in [-0.5, 0.5) (a linear congruential generator). */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
}

export function writeFixtureRun(dir: string, options: FixtureRunOptions = {}): void {
  const epochs = options.epochs ?? 4;
  const stepsPerEpoch = options.stepsPerEpoch ?? 5;
  const nodes = options.nodes ?? 4;
  const kind = options.kind ?? 'search';
  const edges = edgeCount(nodes);
  const random = generator(7);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({ command: kind, dataset: 'synthetic', epochs, batch_size: 16, nodes, k: 4, seed: 2, learning: { lr: 0.1, lr_min: 0 } }, null, 2),
  );
  const alphas = {
    normal: Array.from({ length: edges }, () => Array.from({ length: 8 }, () => 1e-3 * random())),
    reduce: Array.from({ length: edges }, () => Array.from({ length: 8 }, () => 1e-3 * random())),
  };
  const betas = {
    normal: Array.from({ length: edges }, () => 1e-3 * random()),
    reduce: Array.from({ length: edges }, () => 1e-3 * random()),
  };
  const lines: string[] = [];
  const genotypeLines: string[] = [];
  let genotype = deriveGenotype({ alphasNormal: alphas.normal, alphasReduce: alphas.reduce, betasNormal: betas.normal, betasReduce: betas.reduce });
  for (let epoch = 0; epoch < epochs; epoch++) {
    const lr = (0.1 * (1 + Math.cos((Math.PI * epoch) / epochs))) / 2;
    for (let step = 0; step < stepsPerEpoch; step++) {
      const progress = (epoch * stepsPerEpoch + step) / (epochs * stepsPerEpoch);
      lines.push(JSON.stringify({
        type: 'step', epoch, step, lr,
        loss: 2.3 - 1.2 * progress + 0.1 * random(),
        acc: 0.1 + 0.5 * progress + 0.05 * random(),
        ...(kind === 'search' && epoch >= 1 ? { arch_loss: 2.35 - 1.1 * progress + 0.1 * random() } : {}),
        images_per_s: 400 + 40 * random(),
      }));
    }
    const record: Record<string, unknown> = {
      type: 'epoch', epoch, lr,
      train_loss: 2.2 - (1.1 * (epoch + 1)) / epochs,
      train_acc: 0.15 + (0.5 * (epoch + 1)) / epochs,
      valid_loss: 2.25 - (1.0 * (epoch + 1)) / epochs,
      valid_acc: 0.12 + (0.45 * (epoch + 1)) / epochs,
      seconds: 12.5 + random(),
    };
    if (kind === 'search') {
      // drift: favour sep_conv_3x3 on the first input of every node, then skip_connect later
      for (const cell of ['normal', 'reduce'] as const) {
        alphas[cell].forEach((row, e) => {
          row.forEach((_, o) => (row[o] = row[o]! + 0.3 * random()));
          row[4] = row[4]! + 0.1 * epoch * (e % 3 === 0 ? 1 : 0.2);
          row[3] = row[3]! + (epoch >= 2 && e % 2 === 1 ? 0.4 : 0);
        });
        betas[cell].forEach((_, e) => (betas[cell][e] = betas[cell][e]! + 0.5 * random()));
      }
      genotype = deriveGenotype({ alphasNormal: alphas.normal, alphasReduce: alphas.reduce, betasNormal: betas.normal, betasReduce: betas.reduce });
      const count = (cell: 'normal' | 'reduce'): number => genotype[cell].filter(([op]) => op === 'skip_connect').length;
      Object.assign(record, {
        alphas: { normal: softmaxRows(alphas.normal).map((r) => Array.from(r)), reduce: softmaxRows(alphas.reduce).map((r) => Array.from(r)) },
        betas: { normal: Array.from(nodeSoftmax(betas.normal, nodes)), reduce: Array.from(nodeSoftmax(betas.reduce, nodes)) },
        genotype,
        skip_connects: { normal: count('normal'), reduce: count('reduce') },
      });
      genotypeLines.push(JSON.stringify({ epoch, genotype }));
    } else {
      record['test_acc'] = 0.1 + (0.47 * (epoch + 1)) / epochs;
    }
    lines.push(JSON.stringify(record));
  }
  if (kind === 'train') lines.push(JSON.stringify({ type: 'test', top1: 0.5712, top5: 0.9431, loss: 1.21 }));
  let log = lines.join('\n') + '\n';
  if (options.truncated) log += JSON.stringify({ type: 'step', epoch: epochs, step: 0, lr: 0.01, loss: 1.0 }).slice(0, 30);
  writeFileSync(join(dir, 'log.jsonl'), log);
  writeFileSync(join(dir, 'genotype.json'), genotypeToJSON(genotype));
  if (genotypeLines.length > 0) writeFileSync(join(dir, 'genotypes.jsonl'), genotypeLines.join('\n') + '\n');
}
