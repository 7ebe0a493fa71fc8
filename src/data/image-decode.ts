/**
 * Decoding image files to 8-bit RGB with sharp (libvips): JPEG, PNG, WebP, TIFF through sharp
 * itself, BMP through bmp-ts (libvips' prebuilt binaries have no BMP loader). Whatever the file
 * holds (greyscale, palette, 16 bits per sample, alpha, CMYK, an EXIF orientation), what comes
 * out is upright sRGB, 3 bytes per pixel, interleaved: EXIF orientation applied, alpha dropped
 * (as Pillow's convert('RGB') does), CMYK and greyscale converted by libvips, 16-bit scaled to
 * 8. Node only.
 */
import { decode as decodeBmp } from 'bmp-ts';
import sharp, { type Sharp } from 'sharp';

import type { CropBox } from './augment.js';

/** A decodable image: its upright size and a fresh sharp pipeline on it (EXIF orientation applied). */
export interface OpenedImage {
  readonly width: number;
  readonly height: number;
  pipeline(): Sharp;
}

/**
 * How much damage aborts a decode: errors and truncated data do (a file cut short must not
 * train as half grey), libjpeg's mere warnings (extraneous bytes, ...) do not, as in Pillow.
 */
const FAIL_ON = 'error' as const;

function isBmp(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x42 && bytes[1] === 0x4d; // 'BM'
}

/** Reads the header (or, for BMP, the whole file) of an image; throws on anything undecodable. */
export async function openImage(bytes: Uint8Array): Promise<OpenedImage> {
  if (isBmp(bytes)) {
    let bmp: { width: number; height: number; data: Buffer };
    try {
      bmp = decodeBmp(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { toRGBA: true });
    } catch (error) {
      throw new Error(`not a readable BMP: ${(error as Error).message}`);
    }
    const { width, height, data } = bmp;
    if (!(width > 0 && height > 0) || data.length < width * height * 4) throw new Error(`not a readable BMP: ${width}x${height} pixels but ${data.length} bytes of pixel data`);
    // bmp-ts leaves alpha 0 in files without an alpha channel; alpha is dropped anyway.
    return { width, height, pipeline: () => sharp(data, { raw: { width, height, channels: 4 } }) };
  }
  const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const meta = await sharp(input, { failOn: FAIL_ON }).metadata();
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!(width > 0 && height > 0)) throw new Error(`no image size in the ${meta.format ?? 'unknown'} header`);
  return { width, height, pipeline: () => sharp(input, { failOn: FAIL_ON }).autoOrient() };
}

/** Resampling of every resize: a triangle filter scaled with the reduction (Pillow's antialiased BILINEAR). */
const RESIZE = { fit: 'fill', kernel: 'linear' } as const;

/** Ends a pipeline: 3-channel 8-bit sRGB raw pixels, checked to be `width` x `height`. */
async function rgbPixels(pipeline: Sharp, width: number, height: number): Promise<Uint8Array> {
  const { data, info } = await pipeline.removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== width || info.height !== height) {
    throw new Error(`decoded to ${info.width}x${info.height}x${info.channels}, expected ${width}x${height}x3`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** The crop `box` of the upright image resized to `size` x `size` (RandomResizedCrop's resized_crop). */
export function cropResized(image: OpenedImage, box: CropBox, size: number): Promise<Uint8Array> {
  const extracted = image.pipeline().extract({ left: box.left, top: box.top, width: box.width, height: box.height });
  return rgbPixels(extracted.resize(size, size, RESIZE), size, size);
}

/** The upright image resized to `width` x `height`, then the crop `box` of that (Resize, then CenterCrop). */
export function resizedCrop(image: OpenedImage, width: number, height: number, box: CropBox): Promise<Uint8Array> {
  const resized = image.pipeline().resize(width, height, RESIZE);
  return rgbPixels(resized.extract({ left: box.left, top: box.top, width: box.width, height: box.height }), box.width, box.height);
}

/** The whole upright image as RGB (tests, `prepare`). */
export function fullImage(image: OpenedImage): Promise<Uint8Array> {
  return rgbPixels(image.pipeline(), image.width, image.height);
}

/**
 * Decodes every byte of the image data, cheaply where the format allows (JPEG's DCT scaling
 * still reads all entropy-coded data, so truncation is found); throws when it is damaged.
 */
export async function verifyImage(bytes: Uint8Array): Promise<void> {
  const image = await openImage(bytes);
  await image.pipeline().resize(32, 32, { fit: 'inside' }).raw().toBuffer();
}
