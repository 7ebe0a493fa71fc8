/**
 * `pcdarts prepare SRC --out DST --short-side N`: a pre-resized copy of an image folder (the
 * FFCV habit), so that an epoch of full-size photos does not pay for a full decode of every
 * image. Every image file under SRC (the listed extensions, any case, hidden ones skipped)
 * goes to the same relative path under DST, upright, its short side reduced to N (Lanczos),
 * in its own format; an image already that small is copied byte for byte. Other files are
 * not copied. The decode workers do the work. DST/prepare.json records what was done; a
 * prepare that was interrupted continues where it stopped when run again. Node only.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';

import { compareCodePoints, isImageFileName } from './image-folder.js';
import { type PipelineOptions, runFileJob } from './pipeline.js';
import { PREPARE_ALREADY_DONE, PREPARE_COPIED, PREPARE_RESIZED } from './prepare-image.js';

export const PREPARE_MANIFEST = 'prepare.json';

export interface PrepareOptions extends PipelineOptions {
  readonly source: string;
  readonly out: string;
  /** The short side of the copies, in pixels. */
  readonly shortSide: number;
  /** JPEG / WebP quality of re-encoded images (default 90). */
  readonly quality?: number;
  /** Leave out images that fail to decode (listed in the manifest) instead of stopping. */
  readonly skipBadImages?: boolean;
}

export interface PrepareReport {
  readonly source: string;
  readonly out: string;
  readonly short_side: number;
  readonly quality: number;
  readonly images: number;
  readonly resized: number;
  readonly copied: number;
  /** Done by an earlier, interrupted run. */
  readonly already_done: number;
  /** Non-image and hidden entries, not copied. */
  readonly ignored: number;
  /** Images that failed to decode (left out with skipBadImages). */
  readonly bad_images: readonly string[];
  readonly finished: boolean;
}

/** Image files under `root`, relative, '/'-separated, in code-point order; counts what it skips. */
function imageFiles(root: string): { files: string[]; ignored: number } {
  const files: string[] = [];
  let ignored = 0;
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(root, dir)).sort(compareCodePoints)) {
      const rel = dir === '' ? entry : `${dir}/${entry}`;
      if (entry.startsWith('.')) { ignored++; continue; }
      let isDir: boolean;
      try {
        isDir = statSync(join(root, rel)).isDirectory();
      } catch {
        ignored++;
        continue;
      }
      if (isDir) walk(rel);
      else if (isImageFileName(entry)) files.push(rel);
      else ignored++;
    }
  };
  walk('');
  return { files, ignored };
}

/** Checks everything that can be checked before a file is written; throws one-line errors. */
function checkPrepare(options: PrepareOptions, source: string, out: string): void {
  if (!(Number.isInteger(options.shortSide) && options.shortSide >= 8)) throw new Error(`--short-side: expected an integer >= 8 (pixels), got ${options.shortSide}`);
  const quality = options.quality ?? 90;
  if (!(Number.isInteger(quality) && quality >= 1 && quality <= 100)) throw new Error(`--quality: expected an integer in 1..100, got ${quality}`);
  if (!existsSync(source) || !statSync(source).isDirectory()) throw new Error(`${source}: no such directory: expected an image folder (DIR/train/<class>/<image>, ...)`);
  const inside = relative(source, out);
  if (inside === '' || (!inside.startsWith('..') && !isAbsolute(inside))) {
    throw new Error(`--out ${out} is inside the source folder ${source}: give a folder outside it`);
  }
  if (existsSync(out)) {
    if (!statSync(out).isDirectory()) throw new Error(`--out ${out} exists and is not a directory`);
    const manifestPath = join(out, PREPARE_MANIFEST);
    if (existsSync(manifestPath)) {
      const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Partial<PrepareReport>;
      if (manifest.source !== source || manifest.short_side !== options.shortSide || manifest.quality !== quality) {
        throw new Error(`--out ${out} holds a prepare of ${manifest.source} at short side ${manifest.short_side} (quality ${manifest.quality}): give an empty or new folder`);
      }
    } else if (readdirSync(out).length > 0) {
      throw new Error(`--out ${out} is not empty and holds no ${PREPARE_MANIFEST}: give an empty or new folder`);
    }
  }
}

function writeManifest(out: string, report: PrepareReport): void {
  const path = join(out, PREPARE_MANIFEST);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(report, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
}

/** Writes the pre-resized copy; returns what it did. Synchronous (the workers run in parallel). */
export function prepareFolder(options: PrepareOptions): PrepareReport {
  const source = resolve(options.source);
  const out = resolve(options.out);
  checkPrepare(options, source, out);
  const quality = options.quality ?? 90;
  const { files, ignored } = imageFiles(source);
  if (files.length === 0) throw new Error(`${source}: no image files (.jpg .jpeg .png .webp .bmp .tif .tiff, any letter case) under it`);
  const base = { source, out, short_side: options.shortSide, quality, images: files.length, ignored };
  mkdirSync(out, { recursive: true });
  writeManifest(out, { ...base, resized: 0, copied: 0, already_done: 0, bad_images: [], finished: false });
  const { status, firstError } = runFileJob('prepare', source, files, { ...options, outRoot: out, size: options.shortSide, quality });
  const count = (code: number): number => status.reduce((n, s) => n + (s === code ? 1 : 0), 0);
  const bad = files.filter((_, i) => status[i] === 1);
  const report: PrepareReport = {
    ...base, resized: count(PREPARE_RESIZED), copied: count(PREPARE_COPIED), already_done: count(PREPARE_ALREADY_DONE),
    bad_images: bad, finished: bad.length === 0 || options.skipBadImages === true,
  };
  writeManifest(out, report);
  if (firstError !== null && !options.skipBadImages) {
    const more = bad.length > 1 ? ` (${bad.length} bad images in all)` : '';
    throw new Error(`${source}/${firstError.file}: cannot decode: ${firstError.message}: expected a readable image (--skip-bad-images leaves such files out)${more}`);
  }
  return report;
}
