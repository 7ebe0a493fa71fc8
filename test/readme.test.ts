/**
 * The README's code blocks run as written: every block whose info string ends in ` run`
 * (```js run, ```ts run, ```sh run) is executed. JavaScript and TypeScript blocks (types
 * stripped by esbuild) run as ES modules placed inside this package, so that
 * `import ... from 'pcdarts'` resolves to it as it does for a user; each must exit 0 and
 * print a valid genotype as its last line. Shell blocks run line by line from the package
 * root and must exit 0.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';

import { transformSync } from 'esbuild';

import { validateGenotype } from '../src/darts/genotype.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BLOCKS_DIR = join(ROOT, 'dist/test/readme-blocks');
const tmp = mkdtempSync(join(tmpdir(), 'pcdarts-readme-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

export interface CodeBlock {
  language: string;
  /** 1-based line of the opening fence. */
  line: number;
  code: string;
}

/** The fenced blocks of a Markdown text whose info string is `<language> run`. */
export function runnableBlocks(markdown: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w+) run\s*$/.exec(lines[i]!);
    if (open === null) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i]!.startsWith('```'); i++) body.push(lines[i]!);
    blocks.push({ language: open[1]!, line: start + 1, code: `${body.join('\n')}\n` });
  }
  return blocks;
}

function execute(command: string, args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, README_TMP: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => { stdout += c; });
    child.stderr.on('data', (c) => { stderr += c; });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const blocks = runnableBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'));

describe('README code blocks', () => {
  it('has runnable blocks: the library examples and the shell lines', () => {
    const languages = blocks.map((b) => b.language);
    assert.ok(languages.includes('js') && languages.includes('ts') && languages.includes('sh'), `found: ${languages.join(', ')}`);
  });

  for (const block of blocks) {
    if (block.language === 'sh') {
      for (const line of block.code.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'))) {
        it(`README.md:${block.line}: ${line}`, async () => {
          const result = await execute('sh', ['-c', line], ROOT);
          assert.equal(result.code, 0, result.stderr);
        });
      }
      continue;
    }
    it(`README.md:${block.line}: the ${block.language} block runs and prints a genotype`, async () => {
      const js = block.language === 'ts' ? transformSync(block.code, { loader: 'ts', format: 'esm' }).code : block.code;
      mkdirSync(BLOCKS_DIR, { recursive: true });
      const file = join(BLOCKS_DIR, `block-${block.line}.mjs`);
      writeFileSync(file, js);
      const result = await execute(process.execPath, [file], tmp);
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stdout.trim().split('\n');
      const genotype = validateGenotype(JSON.parse(lines[lines.length - 1]!));
      assert.ok(genotype.normal.length > 0);
    });
  }
});
