/**
 * The experiment report's numbers and words: mean and sample standard deviation over seeds per
 * configuration, the plain statements for fewer than 2 seeds and for differences within one
 * standard deviation, tables shaped like the paper's Tables 3 and 4, operation frequencies.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { buildExperimentReport, comparisons, configurations, type ExperimentResults, reportMarkdown, summarize, type TrialResult } from '../../src/index.js';

function trial(label: string, seed: number, top1: number | null, extra: Partial<TrialResult> = {}): TrialResult {
  const random = label === 'random';
  return {
    id: `${label.replace(/\W/g, '')}${seed}`.padEnd(16, '0').slice(0, 16), label, method: random ? 'random' : 'pcdarts', k: random ? 0 : 4, edgeNorm: !random, order: 1, seed, random,
    searchArgs: [], trainArgs: [], state: top1 === null ? 'failed' : 'done', ...(top1 === null ? { failedPhase: 'search' as const, error: '--lr: expected a number > 0, got -1' } : {}),
    genotype: top1 === null ? null : {
      normal: [['sep_conv_3x3', 0], ['skip_connect', 1], ['sep_conv_3x3', 0], ['max_pool_3x3', 2]],
      normal_concat: [2, 3], reduce: [['dil_conv_5x5', 0], ['dil_conv_5x5', 1], ['avg_pool_3x3', 1], ['dil_conv_5x5', 2]], reduce_concat: [2, 3],
    },
    skipConnects: top1 === null ? null : 1, params: 1000, multAdds: 5000, searchSeconds: random ? null : 3600, retrainSeconds: 1800,
    top1, top5: top1 === null ? null : Math.min(1, top1 + 0.1), testLoss: 0.5, searchEpochs: 1, retrainEpochs: 1, ...extra,
  };
}

const results = (trials: TrialResult[]): ExperimentResults => ({ pcdarts_experiment: 1, name: 'unit', dataset: 'fashion-mnist', trials });

describe('experiment report', () => {
  it('summarizes with the sample standard deviation', () => {
    const s = summarize([1, 2, 3, 4]);
    assert.equal(s.mean, 2.5);
    assert.ok(Math.abs(s.std! - Math.sqrt(5 / 3)) < 1e-12);
    assert.equal(summarize([7]).std, null);
  });

  it('says when a difference is within one std, beyond it, or cannot be told', () => {
    const configs = configurations(results([
      trial('pcdarts K=4 EN', 0, 0.90), trial('pcdarts K=4 EN', 1, 0.92), trial('pcdarts K=4 EN', 2, 0.91),
      trial('random', 0, 0.80), trial('random', 1, 0.81), trial('random', 2, 0.79),
      trial('close', 0, 0.905), trial('close', 1, 0.915),
      trial('single', 0, 0.95), trial('single', 1, null),
    ]));
    assert.deepEqual(configs.map((c) => [c.label, c.done.length]), [['pcdarts K=4 EN', 3], ['random', 3], ['close', 2], ['single', 1]]);
    const verdicts = Object.fromEntries(comparisons(configs).map((c) => [`${c.a.label}/${c.b.label}`, c.verdict]));
    assert.equal(verdicts['pcdarts K=4 EN/random'], 'beyond one std');
    assert.equal(verdicts['pcdarts K=4 EN/close'], 'within one std');
    assert.equal(verdicts['pcdarts K=4 EN/single'], 'fewer than 2 seeds');
    const text = comparisons(configs).find((c) => c.b.label === 'random')!.text;
    assert.match(text, /^pcdarts K=4 EN 91\.00% vs random 80\.00% top-1: 11\.00 points, more than one standard deviation \(1\.00\)/);
  });

  it('writes Tables 3 and 4, every run, the warnings and the operation frequencies in Markdown', () => {
    const md = reportMarkdown(buildExperimentReport(results([
      trial('pcdarts K=4 EN', 0, 0.90), trial('pcdarts K=4 EN', 1, 0.92), trial('random', 0, 0.80), trial('bad lr', 0, null),
    ]), { reference: { table: [{ configuration: 'PC-DARTS', 'test error (%)': '2.57 ± 0.07' }] } }));
    assert.match(md, /## Ablation \(shaped like the paper's Table 3\)/);
    assert.match(md, /\| pcdarts K=4 EN \| yes \(K=4\) \| yes \| 1 \| 2\/2 \| 9\.00 ± 1\.41 \| 0\.001 \| 1\.000 \| 1\.0 ± 0\.0 \|/);
    assert.match(md, /\| random \| - \| - \| - \| 1\/1 \| 20\.00 \(1 seed\) \|/);
    assert.match(md, /## Stability over seeds \(shaped like the paper's Table 4\)/);
    assert.match(md, /\| pcdarts K=4 EN \| 10\.00 \| 8\.00 \| 9\.00 ± 1\.41 \|/);
    assert.match(md, /\| bad lr \| failed \|  \| - \| - \|/);
    assert.match(md, /- random: only 1 finished seed, so no standard deviation/);
    assert.match(md, /- bad lr: no finished seeds/);
    assert.match(md, /- bad lr seed 0 \(\w+\) failed in its search: --lr: expected a number > 0, got -1/);
    assert.match(md, /cannot tell: random has fewer than 2 seeds/);
    // 4 normal edges: sep_conv_3x3 twice, skip and max pool once each; reduction: dil_conv_5x5 3 of 4.
    assert.match(md, /\| pcdarts K=4 EN \| 2 \| 0\.25 \/ 0\.00 \| 0\.00 \/ 0\.25 \| 0\.25 \/ 0\.00 \| 0\.50 \/ 0\.00 \| 0\.00 \/ 0\.00 \| 0\.00 \/ 0\.00 \| 0\.00 \/ 0\.75 \|/);
    assert.match(md, /## Reference: the paper\n\n\| configuration \| test error \(%\) \|\n\|---\|---\|\n\| PC-DARTS \| 2\.57 ± 0\.07 \|/);
  });
});
