import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  formatMs, formatRatio, formatTable, median, otherLoad, parsePositiveInt, parseThreadList, timeCalls,
} from '../../bench/harness.js';

describe('bench harness: median', () => {
  it('takes the middle value of an odd count, in any order', () => {
    assert.equal(median([5, 1, 3]), 3);
    assert.equal(median([7]), 7);
  });

  it('averages the two middle values of an even count', () => {
    assert.equal(median([4, 1, 3, 2]), 2.5);
  });

  it('is NaN for no values and does not reorder its input', () => {
    assert.ok(Number.isNaN(median([])));
    const values = [3, 1, 2];
    median(values);
    assert.deepEqual(values, [3, 1, 2]);
  });
});

describe('bench harness: timeCalls', () => {
  it('runs warm-up plus repeat calls, with before() ahead of each, and keeps repeat samples', () => {
    const log: string[] = [];
    const timing = timeCalls(() => log.push('call'), { warmup: 2, repeat: 3, before: () => log.push('before') });
    assert.equal(log.length, 10);
    assert.deepEqual(log.slice(0, 4), ['before', 'call', 'before', 'call']);
    assert.equal(timing.samplesMs.length, 3);
    assert.equal(timing.medianMs, median(timing.samplesMs));
  });

  it('rejects a repeat below one', () => {
    assert.throws(() => timeCalls(() => undefined, { warmup: 0, repeat: 0 }), /repeat/);
  });
});

describe('bench harness: formatting', () => {
  it('pads columns: first left-aligned, others right-aligned, no trailing spaces', () => {
    const text = formatTable(['op', 'ms'], [['conv', '1.50'], ['max pool', '12.3']]);
    assert.equal(text, [
      'op          ms',
      '--------  ----',
      'conv      1.50',
      'max pool  12.3',
    ].join('\n'));
  });

  it('honours explicit alignment and rejects ragged rows', () => {
    const text = formatTable(['a', 'b', 'c'], [['x', 'fwd', '1'], ['yy', 'fwd+bwd', '10']], ['left', 'left']);
    assert.deepEqual(text.split('\n'), ['a   b         c', '--  -------  --', 'x   fwd       1', 'yy  fwd+bwd  10']);
    assert.throws(() => formatTable(['a', 'b'], [['only one']]), /cells/);
  });

  it('formats milliseconds to about three significant digits', () => {
    assert.equal(formatMs(1234.4), '1234');
    assert.equal(formatMs(12.345), '12.3');
    assert.equal(formatMs(1.2345), '1.23');
    assert.equal(formatMs(0.12345), '0.123');
    assert.equal(formatMs(null), '-');
    assert.equal(formatMs(Number.NaN), '-');
  });

  it('formats ours / theirs ratios and dashes missing sides', () => {
    assert.equal(formatRatio(3, 2), '1.50x');
    assert.equal(formatRatio(25, 2), '12.5x');
    assert.equal(formatRatio(1, null), '-');
    assert.equal(formatRatio(undefined, 2), '-');
    assert.equal(formatRatio(1, 0), '-');
  });
});

describe('bench harness: options', () => {
  it('parses thread lists and positive integers', () => {
    assert.deepEqual(parseThreadList('1,2'), [1, 2]);
    assert.deepEqual(parseThreadList(' 2 , 1,2'), [2, 1]);
    assert.throws(() => parseThreadList('1,,2'), /--threads/);
    assert.throws(() => parseThreadList('0'), /--threads/);
    assert.equal(parsePositiveInt('--repeat', '12'), 12);
    assert.throws(() => parsePositiveInt('--repeat', '1.5'), /--repeat/);
  });
});

describe('bench harness: other load', () => {
  it('is machine busy time minus the measured process, per second of wall time, never negative', () => {
    assert.equal(otherLoad(100, 103, 2, 2), 0.5);
    assert.equal(otherLoad(100, 101, 1.2, 2), 0);
  });

  it('is unknown without /proc/stat, the child CPU time or a positive wall time', () => {
    assert.equal(otherLoad(null, 3, 1, 1), null);
    assert.equal(otherLoad(1, 3, undefined, 1), null);
    assert.equal(otherLoad(1, 3, 1, 0), null);
  });
});

describe('bench search: fastest-step line', () => {
  it('compares each side\'s minimum and skips configurations missing a side', async () => {
    const { fastestStepLine } = await import('../../bench/search.js');
    const side = (samplesS: number[]) => ({ side: 's', version: 'v', threads: 2, medianS: samplesS[0], samplesS, parameters: 1, peakRssMiB: 1 });
    const line = fastestStepLine([
      { id: 'k4-b64', ours: side([3, 2.5, 2.8]), torch: side([9, 10, 8]) },
      { id: 'k1-b64', ours: side([10]), torch: null },
    ]);
    assert.ok(line !== null);
    assert.match(line, /k4-b64 2\.50 vs 8\.00 \(0\.31x\)/);
    assert.ok(!line.includes('k1-b64'));
    assert.equal(fastestStepLine([{ id: 'x', ours: null, torch: side([1]) }]), null);
  });
});
