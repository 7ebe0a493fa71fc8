import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  cpuVectorExtensions, formatMs, mainThreadCpuMs, formatRatio, formatTable, median, otherLoad, parsePositiveInt, parseThreadList, peakLine,
  threadTimes, timeCalls,
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

describe('bench harness: machine instruments', () => {
  it('names the vector extensions of an x86 and an ARM /proc/cpuinfo, in a fixed order', () => {
    const x86 = 'processor\t: 0\nmodel name\t: Intel(R) Xeon(R)\nflags\t\t: fpu sse sse2 avx512f fma avx2 avx sse4_2 amx_tile avx512_vnni ht\n';
    assert.deepEqual(cpuVectorExtensions(x86), ['sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512_vnni', 'amx_tile']);
    assert.deepEqual(cpuVectorExtensions('processor\t: 0\nFeatures\t: fp asimd evtstrm sve\n'), ['asimd', 'sve']);
    assert.deepEqual(cpuVectorExtensions('nothing useful'), []);
  });

  it('formats the peak line with the thread scaling', () => {
    assert.equal(peakLine({ build: 'relaxed-simd', oneThread: 51.04, allThreads: 99.5, threads: 2 }),
      'wasm relaxed-simd multiply-add peak (measured in the process, before timing): 51.0 GFLOP/s on 1 thread, 99.5 on 2 (1.95x)');
    assert.equal(peakLine({ build: 'simd', oneThread: 36.5, allThreads: 36.5, threads: 1 }),
      'wasm simd multiply-add peak (measured in the process, before timing): 36.5 GFLOP/s on 1 thread');
  });

  it('reads on-CPU and run-queue time of this process\'s threads: on-CPU time grows with work, wait time never shrinks', () => {
    const before = threadTimes();
    const mainBefore = mainThreadCpuMs();
    if (before === null || mainBefore === null) return; // not Linux: nothing to read (the benches then count every batch)
    // Work until the main thread has run 10 ms on a CPU (however long a busy machine takes).
    let x = 0;
    const deadline = Date.now() + 20_000;
    while ((mainThreadCpuMs() as number) - mainBefore < 10 && Date.now() < deadline) {
      for (let i = 0; i < 100_000; i++) x += Math.sqrt(x + i);
    }
    const mainRan = (mainThreadCpuMs() as number) - mainBefore;
    const after = threadTimes();
    assert.ok(after !== null && x > 0);
    assert.ok(mainRan >= 10, `only ${mainRan} ms of main-thread CPU in 20 s of busy loop`);
    // Every thread's time includes the main thread's.
    assert.ok(after.runNs - before.runNs >= mainRan * 1e6 * 0.99, `all threads ran ${(after.runNs - before.runNs) / 1e6} ms, the main one ${mainRan}`);
    assert.ok(after.waitNs >= before.waitNs);
  });
});

describe('bench search: efficiency lines', () => {
  it('divides the counted FLOPs by each side\'s step time and by the peaks', async () => {
    const { efficiencyLines } = await import('../../bench/search.js');
    const peak = { build: 'simd', oneThread: 40, allThreads: 80, threads: 2 };
    const ours = { side: 'ours', version: 'wasm simd', threads: 2, medianS: 2, samplesS: [2, 1.6, 2.2], parameters: 1, peakRssMiB: 1, peak, flopsPerStep: 40e9 };
    const torch = { side: 'pytorch', version: '1.13', threads: 2, medianS: 8, samplesS: [8], parameters: 1, peakRssMiB: 1, convPeakGflops: 100 };
    const lines = efficiencyLines([{ id: 'k4-b64', ours, torch }]);
    assert.equal(lines.length, 2);
    assert.match(lines[1], /^efficiency k4-b64: 40\.0 GFLOP per step .* ours 20\.0 GFLOP\/s median, 25\.0 fastest = 25 % \/ 31 % of the 2-thread wasm peak \(80\.0 GFLOP\/s\); PyTorch 5\.0 GFLOP\/s = 5 % of its own peak/);
  });
});
