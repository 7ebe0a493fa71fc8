/**
 * The 10-kill soak (npm run soak runs any number): a small search and a small retrain, each
 * SIGKILLed at 10 seeded random moments over forward, backward, the optimiser step and the
 * writing of checkpoints, logs and reports, resumed each time, end bit for bit as an
 * uninterrupted run, with no torn checkpoint.
 */
import assert from 'node:assert/strict';
import { rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { KILL_POINTS, soak } from '../../scripts/soak-driver.js';

const work = mkdtempSync(join(tmpdir(), 'pcdarts-soak-test-'));
after(() => rmSync(work, { recursive: true, force: true }));

describe('random-kill soak', () => {
  it('10 kills of a search and of a retrain: every resume succeeds, no torn checkpoint, no difference', async () => {
    const result = await soak({ kills: 10, seed: 15, workDir: work, threads: 2 });
    assert.deepEqual(result.failures, []);
    assert.equal(result.kills.length, 20);
    assert.equal(result.tornCheckpoints, 0);
    assert.equal(result.differences, 0);
    // The moments are spread: every kind of point is hit in each run.
    for (const phase of ['search', 'train']) {
      const hit = new Set(result.kills.filter((k) => k.phase === phase).map((k) => k.point));
      assert.deepEqual([...hit].sort(), [...KILL_POINTS].sort(), `${phase}: ${[...hit].join(', ')}`);
    }
  });
});
