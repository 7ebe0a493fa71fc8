/**
 * One file of `pcdarts prepare` (run in a decode worker): the upright image with its short
 * side reduced to N, re-encoded in its own format under the same relative path, or the file
 * copied as it is when its short side is N or less already. Written to a temporary name and
 * renamed, so an interrupted prepare never leaves a half-written image (a rerun skips the
 * finished ones). Node only.
 */
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { encode as encodeBmp } from 'bmp-ts';

import { fullImage, openImage } from './image-decode.js';

/** Status codes of a prepared file (see DecodeJob.status). */
export const PREPARE_COPIED = 2;
export const PREPARE_RESIZED = 3;
export const PREPARE_ALREADY_DONE = 4;

function writeAtomically(path: string, data: Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.tmp-prepare-${process.pid}`;
  writeFileSync(temporary, data);
  renameSync(temporary, path);
}

/** The sides of an image of `width` x `height` whose short side becomes `side` (the other in proportion, rounded). */
export function shortSideSize(width: number, height: number, side: number): { width: number; height: number } {
  return width <= height
    ? { width: side, height: Math.max(1, Math.round((height * side) / width)) }
    : { width: Math.max(1, Math.round((width * side) / height)), height: side };
}

export async function prepareImage(bytes: Uint8Array, relative: string, outRoot: string, shortSide: number, quality: number): Promise<number> {
  const out = join(outRoot, relative);
  if (existsSync(out)) return PREPARE_ALREADY_DONE;
  const image = await openImage(bytes);
  if (Math.min(image.width, image.height) <= shortSide) {
    await fullImage(image); // a damaged file must not be copied as if it were fine
    writeAtomically(out, bytes);
    return PREPARE_COPIED;
  }
  const size = shortSideSize(image.width, image.height, shortSide);
  const resized = image.pipeline().resize(size.width, size.height, { fit: 'fill', kernel: 'lanczos3' }).removeAlpha().toColourspace('srgb');
  const extension = relative.slice(relative.lastIndexOf('.') + 1).toLowerCase();
  let encoded: Uint8Array;
  if (extension === 'png') encoded = await resized.png().toBuffer();
  else if (extension === 'webp') encoded = await resized.webp({ quality }).toBuffer();
  else if (extension === 'tif' || extension === 'tiff') encoded = await resized.tiff({ compression: 'lzw' }).toBuffer();
  else if (extension === 'bmp') {
    const rgb = await resized.raw({ depth: 'uchar' }).toBuffer();
    const abgr = Buffer.alloc(size.width * size.height * 4);
    for (let p = 0; p < size.width * size.height; p++) {
      abgr[4 * p + 1] = rgb[3 * p + 2];
      abgr[4 * p + 2] = rgb[3 * p + 1];
      abgr[4 * p + 3] = rgb[3 * p];
    }
    encoded = encodeBmp({ data: abgr, width: size.width, height: size.height, bitPP: 24 }).data;
  } else encoded = await resized.jpeg({ quality, mozjpeg: false }).toBuffer();
  writeAtomically(out, encoded);
  return PREPARE_RESIZED;
}
