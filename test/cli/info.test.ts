/**
 * `pcdarts info` as a user runs it: the counts of spec section 7's table (the library test of
 * every row is test/eval/complexity.test.ts), its text form, and bad input.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { assertBadInput } from './process.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'pcdarts-info-'));
after(() => rmSync(root, { recursive: true, force: true }));

function pcdarts(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: { ...process.env, PCDARTS_THREADS: '1' } });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The shared bad-input contract, and nothing on stdout. */
function assertBadInfo(result: ReturnType<typeof pcdarts>, pattern: RegExp): void {
  assertBadInput(result, pattern);
  assert.equal(result.stdout, '');
}

const TABLE: { genotype: string; args: string[]; parameters: number; multAdds: number }[] = [
  { genotype: 'PC_DARTS_cifar', args: ['--init-channels', '36', '--layers', '20'], parameters: 3_634_678, multAdds: 556_670_592 },
  { genotype: 'PC_DARTS_image', args: ['--dataset', 'imagenet', '--init-channels', '48', '--layers', '14'], parameters: 5_342_464, multAdds: 581_627_328 },
  { genotype: 'PC_DARTS_image', args: [], parameters: 3_721_510, multAdds: 570_466_944 },
  { genotype: 'DARTS_V1', args: ['--dataset', 'cifar10'], parameters: 3_169_414, multAdds: 500_987_520 },
  { genotype: 'DARTS_V2', args: [], parameters: 3_349_342, multAdds: 528_359_040 },
  { genotype: 'PC_DARTS_cifar', args: ['--dataset', 'imagenet'], parameters: 5_270_560, multAdds: 571_137_408 },
];

describe('pcdarts info --json', () => {
  for (const row of TABLE) {
    it(`${row.genotype} ${row.args.join(' ') || '(defaults)'}: ${row.parameters} parameters, ${row.multAdds} mult-adds`, () => {
      const result = pcdarts('info', '--genotype', row.genotype, ...row.args, '--json');
      assert.equal(result.code, 0, result.stderr);
      const info = JSON.parse(result.stdout);
      assert.equal(info.parameters, row.parameters);
      assert.equal(info.mult_adds, row.multAdds);
      assert.equal(info.genotype, row.genotype);
    });
  }
});

describe('pcdarts info', () => {
  it('prints the counts with thousands separators, for a genotype file too', () => {
    const file = join(root, 'pc_darts_cifar.py');
    writeFileSync(file, "PC_DARTS_cifar = Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), ('dil_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), ('dil_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_5x5', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_5x5', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2)], reduce_concat=range(2, 6))\n");
    const result = pcdarts('info', '--genotype', file);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /CIFAR network C36 L20 \(4 nodes per cell\), 3x32x32 input, 10 classes/);
    assert.match(result.stdout, /parameters: 3,634,678 \(3\.63 M, auxiliary head excluded\)/);
    assert.match(result.stdout, /mult-adds: +556,670,592/);
  });

  it('rejects unknown operations, inputs out of range, a node count that disagrees, bad flags: one line, exit 2', () => {
    const genotype = (normal: unknown[]): string => JSON.stringify({
      normal, normal_concat: [2, 3], reduce: [['max_pool_3x3', 0], ['skip_connect', 1], ['skip_connect', 2], ['avg_pool_3x3', 0]], reduce_concat: [2, 3],
    });
    const good = [['sep_conv_3x3', 0], ['skip_connect', 1], ['dil_conv_3x3', 2], ['max_pool_3x3', 0]];
    const unknown = join(root, 'unknown-op.json');
    writeFileSync(unknown, genotype([['sep_conv_9x9', 0], ...good.slice(1)]));
    assertBadInfo(pcdarts('info', '--genotype', unknown), /normal\[0\]: unknown operation 'sep_conv_9x9'/);
    assertBadInfo(pcdarts('info', '--genotype', genotype([...good.slice(0, 2), ['sep_conv_3x3', 3], good[3]])),
      /normal\[2\]: input 3 out of range: node 1 may use inputs 0\.\.2/);
    assertBadInfo(pcdarts('info', '--genotype', genotype(good), '--nodes', '4'), /--nodes 4: .*4 entries make 2 nodes, expected 4/);
    assertBadInfo(pcdarts('info', '--genotype', 'NO_SUCH_GENOTYPE'), /genotype 'NO_SUCH_GENOTYPE': expected a published name/);
    assertBadInfo(pcdarts('info', '--genotype', 'DARTS_V2', '--dataset', 'mnist'), /'mnist' is invalid/);
    assertBadInfo(pcdarts('info', '--genotype', 'DARTS_V2', '--layers', '0'), /--layers: expected an integer >= 1, got 0/);
    assertBadInfo(pcdarts('info'), /give a genotype: pcdarts info GENOTYPE/);
  });
});
