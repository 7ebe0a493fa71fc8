/**
 * What an image file becomes before an exported network sees it (`pcdarts predict`, the web
 * page): the evaluation transform of the dataset the network was trained on, with the same
 * decoder (sharp, image-decode.ts), resampling and normalisation table as the run's own
 * evaluation. One rule per kind of dataset, chosen from the model's description:
 *
 * - image folders and ImageNet (`imagefolder`, `imagenet`): the run's evaluation transform
 *   exactly, Resize(floor(S * 256 / 224)) of the short side, CenterCrop(S) (augment.ts);
 * - CIFAR-10/100 (32x32 colour): the short side resized to 32, the centre 32x32 cropped (a
 *   32x32 file is taken as it is, so a test-set image gives the test set's pixels);
 * - Fashion-MNIST (28x28 greyscale, zero-padded to 32x32 at load time): the image turned to
 *   grey (Pillow's luma, ITU-R 601-2; a greyscale file keeps its values), the short side
 *   resized to 28, the centre 28x28 cropped, 2 black pixels added on each side. The dataset
 *   shows light garments on black, so a photo of one on a white background should be
 *   inverted first;
 * - anything else: short side to the network's size, centre crop (greyscale for 1 channel).
 *
 * Then ToTensor + Normalize with the model's mean and std. Node only (sharp).
 */
import { evaluationResizeSide, normaliseInto, resizeCropGeometry } from '../data/augment.js';
import { normalisationTable } from '../data/batch.js';
import { FASHION_MNIST_PADDING, FASHION_MNIST_RAW_SIZE } from '../data/dataset.js';
import { fullImage, openImage, resizedCrop } from '../data/image-decode.js';
import type { ModelDescription } from './metadata.js';

/** The geometry and colour of an input transform (also what the web page applies, see web.ts). */
export interface InputTransform {
  /** 'folder': the image-folder evaluation transform; 'fit': short side to the crop; 'fashion-mnist': grey, 28, padded. */
  kind: 'folder' | 'fit' | 'fashion-mnist';
  /** Image channels of the network (1: the image is turned to grey). */
  channels: 1 | 3;
  /** The short side the image is resized to. */
  resize: number;
  /** The centre crop's side. */
  crop: number;
  /** Zero pixels added on each side after the crop. */
  pad: number;
  /** Side of the network's input: crop + 2 pad. */
  size: number;
  mean: number[];
  std: number[];
}

/** The transform of a model's description (see the file comment). */
export function inputTransform(description: Pick<ModelDescription, 'dataset' | 'imageSize' | 'inChannels' | 'mean' | 'std'>): InputTransform {
  const [height, width] = description.imageSize;
  if (height !== width) throw new Error(`the model takes ${height}x${width} images: only square inputs are supported`);
  if (description.inChannels !== 1 && description.inChannels !== 3) {
    throw new Error(`the model takes ${description.inChannels}-channel images: only 1 (grey) or 3 (RGB) can be made from an image file`);
  }
  const channels = description.inChannels;
  const base = { channels: channels as 1 | 3, mean: [...description.mean], std: [...description.std], size: height };
  const dataset = description.dataset ?? '';
  if (dataset === 'imagefolder' || dataset === 'imagenet') {
    if (channels !== 3) throw new Error(`an ${dataset} model takes 3-channel images, this one ${channels}`);
    return { ...base, kind: 'folder', resize: evaluationResizeSide(height), crop: height, pad: 0 };
  }
  if (dataset.startsWith('fashion-mnist') && channels === 1 && height === FASHION_MNIST_RAW_SIZE + 2 * FASHION_MNIST_PADDING) {
    return { ...base, kind: 'fashion-mnist', resize: FASHION_MNIST_RAW_SIZE, crop: FASHION_MNIST_RAW_SIZE, pad: FASHION_MNIST_PADDING };
  }
  return { ...base, kind: 'fit', resize: height, crop: height, pad: 0 };
}

/** The evaluation transform's geometry with the resized side given (data/augment.ts). */
export { resizeCropGeometry };

/** Pillow's RGB -> L (what torchvision's Grayscale computes): (299 R + 587 G + 114 B) / 1000 in fixed point. */
export function luma(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >>> 16;
}

/** The network input of one image file: float32 CHW (channels x size x size), normalised. Throws on an undecodable file. */
export async function imageInput(bytes: Uint8Array, transform: InputTransform): Promise<Float32Array> {
  const image = await openImage(bytes);
  const { crop, pad, size, channels } = transform;
  let rgb: Uint8Array;
  if (image.width === crop && image.height === crop && transform.kind !== 'folder') {
    rgb = await fullImage(image); // already the dataset's size: its pixels as they are
  } else {
    const geometry = resizeCropGeometry(image.width, image.height, transform.resize, crop);
    rgb = await resizedCrop(image, geometry.resizeWidth, geometry.resizeHeight, geometry.crop);
  }
  const table = normalisationTable(transform.mean, transform.std);
  const out = new Float32Array(channels * size * size);
  if (channels === 3 && pad === 0) {
    normaliseInto(rgb, crop, crop, false, table, out, 0);
    return out;
  }
  // Grey (or padded colour): pixel by pixel; the padding is black (value 0), normalised like any pixel.
  for (let c = 0; c < channels; c++) out.fill(table[c * 256], c * size * size, (c + 1) * size * size);
  for (let y = 0; y < crop; y++) {
    for (let x = 0; x < crop; x++) {
      const o = 3 * (y * crop + x);
      const at = (y + pad) * size + x + pad;
      if (channels === 1) out[at] = table[luma(rgb[o], rgb[o + 1], rgb[o + 2])];
      else for (let c = 0; c < 3; c++) out[c * size * size + at] = table[c * 256 + rgb[o + c]];
    }
  }
  return out;
}
