/**
 * The torchvision ImageFolder layout (`--dataset imagefolder|imagenet --data DIR`):
 *
 *   DIR/train/<class>/<image>     training images (search and retraining)
 *   DIR/val/<class>/<image>       the test split (retraining, `pcdarts test`); optional for a search
 *
 * As torchvision's ImageFolder: classes are the folder names of DIR/train sorted by code
 * point (Python's sorted(), not locale order), the label of an image is its class's position;
 * a class folder is walked recursively (symbolic links followed), directories in code-point
 * order of their paths, files in code-point order within one. val/ uses train/'s class
 * indices, so a val/ without some classes still labels the others right.
 *
 * Image files: .jpg .jpeg .png .webp .bmp .tif .tiff in any letter case. Everything else,
 * hidden files and folders (names starting with '.') and files outside a class folder are
 * ignored and counted. Each problem is a one-line error naming the path. Node only (fs).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { IMAGENET_MEAN, IMAGENET_STD } from './augment.js';
import type { FolderScanReport, ImageFolderDataset, Split } from './dataset.js';

export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp', '.bmp', '.tif', '.tiff'];

/** The folder of a split: train/ for 'train', val/ for 'test'. */
export function splitFolderName(split: Split): string {
  return split === 'train' ? 'train' : 'val';
}

/** Python's string order: by code point (JS's default sort compares UTF-16 units, which differs above U+FFFF). */
export function compareCodePoints(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

export function isImageFileName(name: string): boolean {
  const lower = name.toLowerCase();
  return !name.startsWith('.') && IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext) && lower.length > ext.length);
}

const LAYOUT_HINT = 'expected the ImageFolder layout DIR/train/<class>/<image> (and DIR/val/<class>/<image>)';
const MAX_EXAMPLES = 10;

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** One split's images and labels as found on disk. */
export interface ScannedSplit {
  /** Absolute split folder. */
  readonly root: string;
  readonly classNames: readonly string[];
  /** Relative to root, '/'-separated, grouped by class. */
  readonly files: readonly string[];
  readonly labels: Int32Array;
  readonly ignoredFiles: number;
  readonly ignoredExamples: readonly string[];
}

interface Ignored { count: number; examples: string[] }

function ignore(ignored: Ignored, relative: string): void {
  ignored.count++;
  if (ignored.examples.length < MAX_EXAMPLES) ignored.examples.push(relative);
}

/** Image files under a class folder, torchvision's walk order; `seen` guards against link cycles. */
function walkClass(root: string, relative: string, ignored: Ignored, seen: Set<string>): string[] {
  const dirs: string[] = [];
  const stack = [relative];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    let real: string;
    try {
      real = statSync(join(root, dir)).ino + ':' + statSync(join(root, dir)).dev;
    } catch {
      continue;
    }
    if (seen.has(real)) continue;
    seen.add(real);
    dirs.push(dir);
    for (const entry of readdirSync(join(root, dir)).sort(compareCodePoints)) {
      const child = `${dir}/${entry}`;
      if (entry.startsWith('.')) {
        ignore(ignored, child);
      } else if (isDirectory(join(root, child))) {
        stack.push(child);
      }
    }
  }
  // sorted(os.walk(...)): directories by their path string, files sorted within each.
  dirs.sort(compareCodePoints);
  const files: string[] = [];
  for (const dir of dirs) {
    for (const entry of readdirSync(join(root, dir)).sort(compareCodePoints)) {
      if (entry.startsWith('.')) continue; // counted above
      const child = `${dir}/${entry}`;
      if (isDirectory(join(root, child))) continue;
      if (isImageFileName(entry)) files.push(child);
      else ignore(ignored, child);
    }
  }
  return files;
}

/**
 * Scans one split folder. `classNames` (train's) fixes the class indices of a val/ folder;
 * absent, the split's own folders are the classes.
 */
export function scanSplitFolder(root: string, classNames?: readonly string[]): ScannedSplit {
  const absolute = resolve(root);
  if (!isDirectory(absolute)) throw new Error(`${absolute}: not found: ${LAYOUT_HINT}`);
  const ignored: Ignored = { count: 0, examples: [] };
  const folders: string[] = [];
  for (const entry of readdirSync(absolute).sort(compareCodePoints)) {
    if (entry.startsWith('.')) ignore(ignored, entry);
    else if (isDirectory(join(absolute, entry))) folders.push(entry);
    else ignore(ignored, entry);
  }
  if (folders.length === 0) throw new Error(`${absolute}: no class folders: ${LAYOUT_HINT}`);
  const classes = classNames ?? folders;
  const classIndex = new Map(classes.map((name, i) => [name, i]));
  const files: string[] = [];
  const labels: number[] = [];
  for (const folder of folders) {
    const label = classIndex.get(folder);
    if (label === undefined) {
      throw new Error(`${join(absolute, folder)}: class '${folder}' is not a class of the training folder: val/ may only hold class folders that train/ has`);
    }
    const found = walkClass(absolute, folder, ignored, new Set());
    if (found.length === 0) {
      throw new Error(`${join(absolute, folder)}: empty class folder: expected at least one image (${IMAGE_EXTENSIONS.join(' ')}, any letter case)`);
    }
    for (const file of found) {
      files.push(file);
      labels.push(label);
    }
  }
  return { root: absolute, classNames: classes, files, labels: Int32Array.from(labels), ignoredFiles: ignored.count, ignoredExamples: ignored.examples };
}

export interface ImageFolderOptions {
  /** The dataset's name ('imagefolder' or 'imagenet'). */
  readonly name: string;
  /** DIR, holding train/ and optionally val/. */
  readonly dir: string;
  readonly split: Split;
  /** Side of the square images a batch holds. */
  readonly imageSize: number;
}

/**
 * A split of an image folder as an ImageFolderDataset (files not decoded yet: see
 * `verifyImages` in pipeline.ts). Normalisation: the ImageNet mean and std.
 */
export function loadImageFolder(options: ImageFolderOptions): ImageFolderDataset {
  const dir = resolve(options.dir);
  if (!isDirectory(dir)) throw new Error(`${options.name}: ${dir}: no such directory: ${LAYOUT_HINT}`);
  const trainRoot = join(dir, 'train');
  if (!isDirectory(trainRoot)) {
    throw new Error(`${options.name}: ${trainRoot} not found${existsSync(trainRoot) ? ' (not a directory)' : ''}: ${LAYOUT_HINT}`);
  }
  const classNames = scanClassNames(trainRoot);
  let scanned: ScannedSplit;
  if (options.split === 'train') {
    scanned = scanSplitFolder(trainRoot);
  } else {
    const valRoot = join(dir, 'val');
    if (!isDirectory(valRoot)) throw new Error(`${options.name}: ${valRoot} not found: the test split is DIR/val/<class>/<image>, with train/'s class folders`);
    scanned = scanSplitFolder(valRoot, classNames);
  }
  const report: FolderScanReport = { ignoredFiles: scanned.ignoredFiles, ignoredExamples: scanned.ignoredExamples, badImages: [] };
  return {
    name: options.name, split: options.split, count: scanned.files.length, labels: scanned.labels,
    channels: 3, height: options.imageSize, width: options.imageSize,
    classes: classNames.length, classNames, mean: IMAGENET_MEAN, std: IMAGENET_STD,
    files: scanned.files, root: scanned.root, report,
  };
}

/** The class folder names of a train/ folder, sorted by code point (no walking). */
export function scanClassNames(trainRoot: string): string[] {
  const names = readdirSync(trainRoot).filter((entry) => !entry.startsWith('.') && isDirectory(join(trainRoot, entry))).sort(compareCodePoints);
  if (names.length === 0) throw new Error(`${resolve(trainRoot)}: no class folders: ${LAYOUT_HINT}`);
  return names;
}

/** The dataset without the items `drop` (sorted ascending), e.g. images that fail to decode. */
export function withoutItems(dataset: ImageFolderDataset, drop: readonly number[]): ImageFolderDataset {
  if (drop.length === 0) return dataset;
  const dropSet = new Set(drop);
  const files: string[] = [];
  const labels: number[] = [];
  for (let i = 0; i < dataset.count; i++) {
    if (dropSet.has(i)) continue;
    files.push(dataset.files[i]);
    labels.push(dataset.labels[i]);
  }
  return {
    ...dataset, files, labels: Int32Array.from(labels), count: files.length,
    report: { ...dataset.report, badImages: [...dataset.report.badImages, ...drop.map((i) => dataset.files[i])] },
  };
}
