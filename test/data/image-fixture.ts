/**
 * Image folders for the tests, made with sharp (and bmp-ts for BMP): every format and oddity
 * the loader must handle (greyscale, palette, 16-bit, alpha, CMYK, EXIF orientations, BMP,
 * WebP, TIFF, upper-case extensions, nested folders), plus files that must be ignored. Each
 * image's upright content is a known RGB array, so a decode can be checked against it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { encode as encodeBmp } from 'bmp-ts';
import sharp, { type Sharp } from 'sharp';

import { Random } from '../../src/tensor/random.js';

export type Variant = 'jpeg' | 'png' | 'grey' | 'grey16' | 'palette' | 'rgb16' | 'alpha' | 'grey-alpha' | 'cmyk' | 'exif' | 'webp' | 'tiff' | 'bmp';

export const VARIANTS: readonly Variant[] = ['jpeg', 'png', 'grey', 'grey16', 'palette', 'rgb16', 'alpha', 'grey-alpha', 'cmyk', 'exif', 'webp', 'tiff', 'bmp'];

const EXTENSION: Record<Variant, string> = {
  'jpeg': 'jpg', 'png': 'png', 'grey': 'png', 'grey16': 'PNG', 'palette': 'png', 'rgb16': 'png', 'alpha': 'png',
  'grey-alpha': 'png', 'cmyk': 'jpeg', 'exif': 'JPG', 'webp': 'webp', 'tiff': 'tif', 'bmp': 'bmp',
};

/**
 * A smooth pattern (so lossy codecs keep it close) that depends on `seed` (a class's images
 * can then be told apart), width x height, RGB interleaved.
 */
export function pattern(width: number, height: number, seed: number): Uint8Array {
  const random = new Random(seed);
  const [a, b, c] = [random.uniform(), random.uniform(), random.uniform()];
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = 3 * (y * width + x);
      rgb[o] = Math.round(127.5 + 120 * Math.sin(6 * a * x / width + 3 * c));
      rgb[o + 1] = Math.round(127.5 + 120 * Math.cos(5 * b * y / height + 2 * a));
      rgb[o + 2] = Math.round(255 * ((x + y) / (width + height - 2 || 1)) * c);
    }
  }
  return rgb;
}

/** Only 4 colours: a palette PNG of it is lossless. */
export function fewColours(width: number, height: number): Uint8Array {
  const colours = [[200, 30, 30], [30, 200, 30], [30, 30, 200], [240, 240, 240]];
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) rgb.set(colours[(x >> 2) % 2 + 2 * ((y >> 2) % 2)], 3 * (y * width + x));
  return rgb;
}

const raw = (rgb: Uint8Array, width: number, height: number, channels: 1 | 2 | 3 | 4 = 3): Sharp =>
  sharp(Buffer.from(rgb), { raw: { width, height, channels } });

/**
 * How the pixels of a file tagged with EXIF orientation 1..8 are stored, for upright content:
 * rotate clockwise by `angle`, then mirror left-right when `flop` (EXIF: 5 is the transpose,
 * 7 the transverse, 6 needs a quarter turn clockwise to display, 8 one anticlockwise).
 */
const STORED: Record<number, { angle: number; flop: boolean }> = {
  1: { angle: 0, flop: false }, 2: { angle: 0, flop: true }, 3: { angle: 180, flop: false }, 4: { angle: 180, flop: true },
  5: { angle: 90, flop: true }, 6: { angle: 270, flop: false }, 7: { angle: 270, flop: true }, 8: { angle: 90, flop: false },
};

/** The upright content `rgb` stored as a file tagged with EXIF orientation `orientation` (1..8). */
export async function storedWithOrientation(rgb: Uint8Array, width: number, height: number, orientation: number, format: 'jpeg' | 'tiff'): Promise<Buffer> {
  const { angle, flop } = STORED[orientation];
  const rotated = await raw(rgb, width, height).rotate(angle).raw().toBuffer({ resolveWithObject: true });
  let stored = sharp(rotated.data, { raw: { width: rotated.info.width, height: rotated.info.height, channels: 3 } });
  if (flop) stored = stored.flop();
  const encoded = format === 'jpeg' ? stored.jpeg({ quality: 100 }) : stored.tiff({ compression: 'lzw' });
  return encoded.withMetadata({ orientation }).toBuffer();
}

/** One image file of a variant whose upright content is `rgb` (for 'grey*': its luma). */
export async function encodeVariant(variant: Variant, rgb: Uint8Array, width: number, height: number): Promise<Buffer> {
  switch (variant) {
    case 'jpeg': return raw(rgb, width, height).jpeg({ quality: 95 }).toBuffer();
    case 'png': return raw(rgb, width, height).png().toBuffer();
    case 'grey': return raw(rgb, width, height).toColourspace('b-w').png().toBuffer();
    case 'grey16': return raw(rgb, width, height).toColourspace('grey16').png().toBuffer();
    case 'palette': return raw(rgb, width, height).png({ palette: true, colours: 16, dither: 0 }).toBuffer();
    case 'rgb16': return raw(rgb, width, height).toColourspace('rgb16').png().toBuffer();
    case 'alpha': {
      const rgba = new Uint8Array(width * height * 4);
      for (let p = 0; p < width * height; p++) { rgba.set(rgb.subarray(3 * p, 3 * p + 3), 4 * p); rgba[4 * p + 3] = (p * 7) % 256; }
      return raw(rgba, width, height, 4).png().toBuffer();
    }
    case 'grey-alpha': return raw(rgb, width, height).toColourspace('b-w').ensureAlpha(0.3).png().toBuffer();
    case 'cmyk': return raw(rgb, width, height).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer();
    case 'exif': return storedWithOrientation(rgb, width, height, 6, 'jpeg');
    case 'webp': return raw(rgb, width, height).webp({ lossless: true }).toBuffer();
    case 'tiff': return raw(rgb, width, height).tiff({ compression: 'lzw' }).toBuffer();
    case 'bmp': {
      const abgr = Buffer.alloc(width * height * 4);
      for (let p = 0; p < width * height; p++) {
        abgr[4 * p] = 0; abgr[4 * p + 1] = rgb[3 * p + 2]; abgr[4 * p + 2] = rgb[3 * p + 1]; abgr[4 * p + 3] = rgb[3 * p];
      }
      return encodeBmp({ data: abgr, width, height, bitPP: 24 }).data;
    }
  }
}


export interface FolderSpec {
  /** Class folder names (any Unicode). */
  readonly classes: readonly string[];
  /** Training images per class. */
  readonly trainPerClass: number;
  /** Validation images per class (0: no val/). */
  readonly valPerClass: number;
  /** Range of image sides. */
  readonly minSide?: number;
  readonly maxSide?: number;
  readonly seed?: number;
  /** Add files the loader must ignore (and count). */
  readonly clutter?: boolean;
}

/**
 * Writes DIR/train/<class>/... and DIR/val/<class>/... cycling through every variant; returns
 * the number of ignored entries it added to train/ (clutter). The content of an image depends
 * on its class, so a network can learn something.
 */
export async function makeImageFolder(dir: string, spec: FolderSpec): Promise<{ ignoredInTrain: number }> {
  const random = new Random(spec.seed ?? 1);
  const minSide = spec.minSide ?? 20;
  const maxSide = spec.maxSide ?? 48;
  let k = 0;
  let ignoredInTrain = 0;
  for (const [split, count] of [['train', spec.trainPerClass], ['val', spec.valPerClass]] as const) {
    if (count === 0) continue;
    for (const [c, name] of spec.classes.entries()) {
      for (let i = 0; i < count; i++) {
        const variant = VARIANTS[k++ % VARIANTS.length];
        const width = minSide + random.int(maxSide - minSide + 1);
        const height = minSide + random.int(maxSide - minSide + 1);
        const rgb = variant === 'palette' ? fewColours(width, height) : pattern(width, height, 1000 * c + i);
        const nested = i === 1 ? 'sub/' : '';
        const file = join(dir, split, name, `${nested}${String(i).padStart(3, '0')}-${variant}.${EXTENSION[variant]}`);
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, await encodeVariant(variant, rgb, width, height));
      }
    }
  }
  if (spec.clutter) {
    const first = join(dir, 'train', spec.classes[0]);
    writeFileSync(join(first, 'labels.txt'), 'not an image\n');
    writeFileSync(join(first, '.hidden.jpg'), 'hidden');
    mkdirSync(join(first, '.cache'), { recursive: true });
    writeFileSync(join(first, '.cache', 'x.png'), 'hidden folder');
    writeFileSync(join(dir, 'train', 'README.md'), 'stray file at the class level');
    writeFileSync(join(dir, 'train', '.DS_Store'), 'finder');
    ignoredInTrain = 5; // labels.txt, .hidden.jpg, .cache, README.md, .DS_Store
  }
  return { ignoredInTrain };
}
