import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { float32ForJson } from '../../src/run/metrics.js';
import { estimateSecondsLeft, formatDuration, LineProgress } from '../../src/run/progress.js';

describe('progress', () => {
  it('formats durations and estimates the time left from the rate since the start', () => {
    assert.equal(formatDuration(12.4), '12s');
    assert.equal(formatDuration(185), '3m05s');
    assert.equal(formatDuration(7620), '2h07m');
    assert.equal(formatDuration(Number.NaN), '?');
    // Resumed at 100 of 400; 50 more steps in 10 s -> 250 left take 50 s.
    assert.equal(estimateSecondsLeft(100, 0, 150, 400, 10_000), 50);
    assert.ok(Number.isNaN(estimateSecondsLeft(100, 0, 100, 400, 10_000)));
  });

  it('prints plain lines at most once per interval, always the last one, and every note', () => {
    let now = 0;
    const lines: string[] = [];
    const progress = new LineProgress((line) => lines.push(line), 1000, () => now);
    progress.start(10, 0, 'epoch 1/1');
    for (let done = 1; done <= 10; done++) {
      now += 300;
      progress.update(done, `step ${done}`);
      if (done === 5) progress.note('a note');
    }
    progress.stop();
    assert.deepEqual(lines, [
      '[0s] 0/10 steps (0%), ETA ? | epoch 1/1',
      '[1s] 4/10 steps (40%), ETA 2s | step 4',
      'a note',
      '[2s] 8/10 steps (80%), ETA 1s | step 8',
      '[3s] 10/10 steps (100%), ETA 0s | step 10',
    ]);
  });

  it('writes float32 values with the fewest digits that read back exactly', () => {
    for (const v of [0.1, 1 / 3, 2.2833349704742432, 1e-7, 123456.78]) {
      const written = float32ForJson(v);
      assert.equal(Math.fround(written), Math.fround(v));
      assert.ok(String(written).length <= 12, String(written));
    }
  });
});
