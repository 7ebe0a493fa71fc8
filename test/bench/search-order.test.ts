/** bench search --order: parsing the orders and the order-2-over-order-1 line. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { orderLines, parseOrders } from '../../bench/search.js';

describe('bench search --order', () => {
  it('parses 1, 2 and 1,2 and refuses anything else', () => {
    assert.deepEqual(parseOrders('1,2'), [1, 2]);
    assert.deepEqual(parseOrders('2'), [2]);
    assert.deepEqual(parseOrders('2,2,1'), [2, 1]);
    assert.throws(() => parseOrders('3'), /--order: expected 1, 2 or 1,2, got '3'/);
    assert.throws(() => parseOrders(','), /no order given/);
  });

  it('divides each second-order run by the first-order run of its configuration', () => {
    const result = (medianS: number, peakRssMiB: number, backendPeakMiB?: number) => ({
      side: 's', version: 'v', threads: 1, medianS, samplesS: [medianS], cpuSamplesS: [medianS / 2], parameters: 1, peakRssMiB,
      ...(backendPeakMiB ? { backendPeakMiB } : {}),
    });
    const side = (r: ReturnType<typeof result> | null) => ({ side: 'ours', config: 'c', result: r, error: null, otherLoad: null, wallS: 1 });
    const config = { id: 'k4-b16', k: 4, batch: 16 };
    const lines = orderLines([
      { config, order: 1, ours: side(result(2, 1024, 512)), torch: side(result(4, 2048)) },
      { config: { ...config, id: 'k4-b16-o2' }, order: 2, ours: side(result(6, 1536, 640)), torch: side(result(16, 4096)) },
      { config: { ...config, id: 'k1-b16-o2' }, order: 2, ours: side(result(6, 1536, 640)), torch: null },
    ]);
    assert.equal(lines.length, 1, 'a configuration measured at one order only has no line');
    assert.match(lines[0], /^order 2 \/ order 1, k4-b16: ours time 3\.00x, CPU s\/step 1\.00 -> 3\.00 \(3\.00x\), peak RSS 1\.50x \(1\.00 -> 1\.50 GiB\), backend live peak 1\.25x/);
    assert.match(lines[0], /PyTorch time 4\.00x, CPU s\/step 2\.00 -> 8\.00 \(4\.00x\), peak RSS 2\.00x/);
  });
});
