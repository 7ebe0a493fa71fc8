/**
 * ImageNet-style augmentation with torchvision 0.14's semantics on PIL images (what the
 * authors' train_search_imagenet.py / train_imagenet.py apply), as pure functions:
 *
 *   training:   RandomResizedCrop(size, scale (0.08, 1), ratio (3/4, 4/3)) -> RandomHorizontalFlip
 *               -> [retraining] ColorJitter(0.4, 0.4, 0.4, 0.2) -> ToTensor -> Normalize
 *   evaluation: Resize(floor(size * 256 / 224)) of the short side -> CenterCrop(size) -> ToTensor -> Normalize
 *
 * The geometry (crop boxes, resized sizes) follows torchvision's code line by line, float32
 * where torch computes in float32 and Python's rounding (half to even) where it rounds. The
 * colour adjustments follow Pillow 9.4's C code (Image.blend, ImageEnhance, the RGB<->HSV
 * conversions) on 8-bit RGB, so they give Pillow's bytes. Resampling itself is sharp's
 * (libvips, a triangle filter like Pillow's antialiased BILINEAR), not bit-equal to Pillow.
 *
 * Random draws of one sample, in this order (torchvision's): the crop's tries (scale, then
 * log-ratio, each try; then top, then left), the flip (uniform < 0.5), then the jitter's
 * order (a permutation of 4) and its four factors (brightness, contrast, saturation, hue).
 */

/**
 * The draws these transforms make, at the level torchvision makes them (so a test can replay
 * torch's own values): `randomDraws(random)` in runs, a scripted source in tests.
 */
export interface AugmentDraws {
  /** torch.rand(1): uniform in [0, 1). */
  uniform(): number;
  /** torch.empty(1).uniform_(low, high).item(): a float32 value in [low, high). */
  uniformRange(low: number, high: number): number;
  /** torch.randint(0, n, (1,)): an integer in [0, n). */
  int(n: number): number;
  /** torch.randperm(n). */
  permutation(n: number): number[];
}

/** The draws of a seeded generator (float32 ranges as torch's uniform_, Fisher-Yates permutations). */
export function randomDraws(random: { uniform(): number; int(n: number): number }): AugmentDraws {
  return {
    uniform: () => random.uniform(),
    uniformRange: (low, high) => Math.fround(Math.fround(low) + Math.fround(Math.fround(high - low) * Math.fround(random.uniform()))),
    int: (n) => random.int(n),
    permutation: (n) => {
      const order = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = random.int(i + 1);
        [order[i], order[j]] = [order[j], order[i]];
      }
      return order;
    },
  };
}

/** A crop box of an image: top row, left column, height, width (torchvision's i, j, h, w). */
export interface CropBox {
  readonly top: number;
  readonly left: number;
  readonly height: number;
  readonly width: number;
}

export const RRC_SCALE: readonly [number, number] = [0.08, 1];
export const RRC_RATIO: readonly [number, number] = [3 / 4, 4 / 3];
/** ColorJitter(brightness, contrast, saturation, hue) of the authors' ImageNet retraining. */
export const IMAGENET_JITTER: readonly [number, number, number, number] = [0.4, 0.4, 0.4, 0.2];
export const IMAGENET_MEAN: readonly number[] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly number[] = [0.229, 0.224, 0.225];

/** Python's round(): to the nearest integer, halves to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * RandomResizedCrop.get_params for an image of `width` x `height`: up to ten tries of a random
 * area fraction and log-uniform aspect ratio, else the centre crop clamped to the ratio range.
 */
export function randomResizedCropBox(
  width: number, height: number, draws: AugmentDraws, scale: readonly [number, number] = RRC_SCALE,
  ratio: readonly [number, number] = RRC_RATIO,
): CropBox {
  const area = height * width;
  // torch.log(torch.tensor(ratio)): float32 logs of float32 ratios.
  const logLow = Math.fround(Math.log(Math.fround(ratio[0])));
  const logHigh = Math.fround(Math.log(Math.fround(ratio[1])));
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * draws.uniformRange(scale[0], scale[1]);
    const aspectRatio = Math.fround(Math.exp(draws.uniformRange(logLow, logHigh)));
    const w = roundHalfEven(Math.sqrt(targetArea * aspectRatio));
    const h = roundHalfEven(Math.sqrt(targetArea / aspectRatio));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = draws.int(height - h + 1);
      const left = draws.int(width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  const inRatio = width / height;
  const minRatio = Math.min(ratio[0], ratio[1]);
  const maxRatio = Math.max(ratio[0], ratio[1]);
  let w: number;
  let h: number;
  if (inRatio < minRatio) {
    w = width;
    h = roundHalfEven(w / minRatio);
  } else if (inRatio > maxRatio) {
    h = height;
    w = roundHalfEven(h * maxRatio);
  } else {
    w = width;
    h = height;
  }
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/** The short side the evaluation transform resizes to: floor(size * 256 / 224) (256 for 224). */
export function evaluationResizeSide(size: number): number {
  return Math.floor((size * 8) / 7);
}

/**
 * Resize of the short side to `side` (the other side as torchvision computes it,
 * int(side * long / short)), then the centre `crop` (top = round((h - crop) / 2), halves to even).
 */
export function resizeCropGeometry(width: number, height: number, side: number, crop: number): { resizeWidth: number; resizeHeight: number; crop: CropBox } {
  const [short, long] = width <= height ? [width, height] : [height, width];
  const newLong = Math.trunc((side * long) / short);
  const resizeWidth = width <= height ? side : newLong;
  const resizeHeight = width <= height ? newLong : side;
  return {
    resizeWidth, resizeHeight,
    crop: { top: roundHalfEven((resizeHeight - crop) / 2), left: roundHalfEven((resizeWidth - crop) / 2), height: crop, width: crop },
  };
}

/** Evaluation geometry: Resize(short side -> evaluationResizeSide(size)), then CenterCrop(size). */
export function evaluationGeometry(width: number, height: number, size: number): { resizeWidth: number; resizeHeight: number; crop: CropBox } {
  return resizeCropGeometry(width, height, evaluationResizeSide(size), size);
}

// ------------------------------------------------------------------------------------------
// ColorJitter on 8-bit RGB, interleaved (HWC), as Pillow computes it

/** The drawn parameters of one ColorJitter application. */
export interface JitterParams {
  /** Application order of brightness (0), contrast (1), saturation (2), hue (3). */
  readonly order: readonly number[];
  readonly brightness: number;
  readonly contrast: number;
  readonly saturation: number;
  readonly hue: number;
}

/**
 * ColorJitter.get_params: torch.randperm(4), then each factor uniform in
 * [max(0, 1 - x), 1 + x] (hue: [-x, x]), float32 as torch draws them.
 */
export function drawJitter(draws: AugmentDraws, strength: readonly [number, number, number, number] = IMAGENET_JITTER): JitterParams {
  const order = draws.permutation(4);
  const range = (x: number): [number, number] => [Math.max(0, 1 - x), 1 + x];
  const [b, c, s, h] = strength;
  return {
    order,
    brightness: draws.uniformRange(...range(b)),
    contrast: draws.uniformRange(...range(c)),
    saturation: draws.uniformRange(...range(s)),
    hue: draws.uniformRange(-h, h),
  };
}

/**
 * Pillow's Image.blend(in1, in2, alpha) of one 8-bit value pair: float32 arithmetic,
 * truncation toward zero, clipping only when extrapolating.
 */
function blendValue(in1: number, in2: number, alpha: number, interpolate: boolean): number {
  const temp = Math.fround(in1 + Math.fround(alpha * (in2 - in1)));
  return interpolate ? Math.trunc(temp) : temp <= 0 ? 0 : temp >= 255 ? 255 : Math.trunc(temp);
}

/** Image.blend with a constant first image: one lookup table over the 256 values. */
function blendConstant(rgb: Uint8Array, constant: number, alpha: number): void {
  const a = Math.fround(alpha);
  if (a === 1) return;
  if (a === 0) {
    rgb.fill(constant);
    return;
  }
  const interpolate = a >= 0 && a <= 1;
  const table = new Uint8Array(256);
  for (let v = 0; v < 256; v++) table[v] = blendValue(constant, v, a, interpolate);
  for (let i = 0; i < rgb.length; i++) rgb[i] = table[rgb[i]];
}

/** Pillow's RGB -> L: (299 R + 587 G + 114 B) / 1000 in fixed point, rounded. */
function luma(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >>> 16;
}

/** ImageEnhance.Brightness(image).enhance(factor): blend with black. */
export function adjustBrightness(rgb: Uint8Array, factor: number): void {
  blendConstant(rgb, 0, factor);
}

/** ImageEnhance.Contrast: blend with a grey image at the rounded mean luma. */
export function adjustContrast(rgb: Uint8Array, factor: number): void {
  let sum = 0;
  const pixels = rgb.length / 3;
  for (let p = 0; p < pixels; p++) sum += luma(rgb[3 * p], rgb[3 * p + 1], rgb[3 * p + 2]);
  blendConstant(rgb, Math.trunc(sum / pixels + 0.5), factor);
}

/** ImageEnhance.Color: blend with the image's own luma (a 256 x 256 table over (luma, value)). */
export function adjustSaturation(rgb: Uint8Array, factor: number): void {
  const a = Math.fround(factor);
  if (a === 1) return;
  const interpolate = a >= 0 && a <= 1;
  const table = new Uint8Array(65536);
  for (let grey = 0; grey < 256; grey++) {
    for (let v = 0; v < 256; v++) table[(grey << 8) | v] = a === 0 ? grey : blendValue(grey, v, a, interpolate);
  }
  for (let o = 0; o < rgb.length; o += 3) {
    const row = luma(rgb[o], rgb[o + 1], rgb[o + 2]) << 8;
    rgb[o] = table[row | rgb[o]];
    rgb[o + 1] = table[row | rgb[o + 1]];
    rgb[o + 2] = table[row | rgb[o + 2]];
  }
}

const clip8 = (v: number): number => (v <= 0 ? 0 : v >= 255 ? 255 : v);

/** float32(a / b) for 8-bit a, b (b > 0): the divisions of Pillow's rgb2hsv, looked up. */
let quotients: Float32Array | null = null;
function quotientTable(): Float32Array {
  if (quotients === null) {
    quotients = new Float32Array(65536);
    for (let a = 0; a < 256; a++) for (let b = 1; b < 256; b++) quotients[(a << 8) | b] = a / b;
  }
  return quotients;
}

/**
 * torchvision's adjust_hue on a PIL image: to Pillow's 8-bit HSV, H += uint8(hue * 255)
 * (wrapping), back to RGB (Pillow's rgb2hsv / hsv2rgb, float and double exactly as its C).
 */
export function adjustHue(rgb: Uint8Array, hueFactor: number): void {
  if (!(hueFactor >= -0.5 && hueFactor <= 0.5)) throw new Error(`adjustHue: hue factor ${hueFactor} is not in [-0.5, 0.5]`);
  const shift = ((Math.trunc(hueFactor * 255) % 256) + 256) % 256; // np.uint8(hue_factor * 255)
  const f32 = Math.fround;
  const q = quotientTable();
  // hsv2rgb's per-hue and per-saturation terms: sector, remainder, s / 255.
  const sector = new Int32Array(256);
  const remainder = new Float32Array(256);
  const fraction = new Float32Array(256);
  for (let h = 0; h < 256; h++) {
    sector[h] = Math.floor((h * 6.0) / 255.0);
    remainder[h] = (h * 6.0) / 255.0 - sector[h];
    fraction[h] = h / 255.0;
  }
  for (let o = 0; o < rgb.length; o += 3) {
    const r = rgb[o];
    const g = rgb[o + 1];
    const b = rgb[o + 2];
    const maxc = r > g ? (r > b ? r : b) : (g > b ? g : b);
    const minc = r < g ? (r < b ? r : b) : (g < b ? g : b);
    if (minc === maxc) continue; // s = 0: hsv2rgb gives (v, v, v), the pixel itself
    const cr = maxc - minc;
    const s = q[(cr << 8) | maxc];
    const rc = q[((maxc - r) << 8) | cr];
    const gc = q[((maxc - g) << 8) | cr];
    const bc = q[((maxc - b) << 8) | cr];
    let h: number;
    if (r === maxc) h = f32(bc - gc);
    else if (g === maxc) h = f32(2.0 + rc - bc);
    else h = f32(4.0 + gc - rc);
    // fmod(h / 6 + 1, 1): the argument is in [0, 2), where x - 1 is exact (Sterbenz).
    const wrapped = h / 6.0 + 1.0;
    h = f32(wrapped >= 1.0 ? wrapped - 1.0 : wrapped);
    const h8 = (clip8(Math.trunc(h * 255.0)) + shift) & 255;
    const s8 = clip8(Math.trunc(s * 255.0));
    const v = maxc;
    if (s8 === 0) {
      rgb[o] = v;
      rgb[o + 1] = v;
      rgb[o + 2] = v;
      continue;
    }
    const i = sector[h8];
    const f = remainder[h8];
    const fs = fraction[s8];
    // C's round() of values in [0, v]: Math.round (halves up, i.e. away from zero, here).
    const p = Math.round(v * (1.0 - fs));
    const qq = Math.round(v * (1.0 - f32(fs * f)));
    const t = Math.round(v * (1.0 - fs * (1.0 - f)));
    switch (i % 6) {
      case 0: rgb[o] = v; rgb[o + 1] = t; rgb[o + 2] = p; break;
      case 1: rgb[o] = qq; rgb[o + 1] = v; rgb[o + 2] = p; break;
      case 2: rgb[o] = p; rgb[o + 1] = v; rgb[o + 2] = t; break;
      case 3: rgb[o] = p; rgb[o + 1] = qq; rgb[o + 2] = v; break;
      case 4: rgb[o] = t; rgb[o + 1] = p; rgb[o + 2] = v; break;
      default: rgb[o] = v; rgb[o + 1] = p; rgb[o + 2] = qq; break;
    }
  }
}

/** Applies the four adjustments in the drawn order (torchvision's ColorJitter.forward). */
export function applyJitter(rgb: Uint8Array, params: JitterParams): void {
  for (const fn of params.order) {
    if (fn === 0) adjustBrightness(rgb, params.brightness);
    else if (fn === 1) adjustContrast(rgb, params.contrast);
    else if (fn === 2) adjustSaturation(rgb, params.saturation);
    else adjustHue(rgb, params.hue);
  }
}

/**
 * ToTensor + Normalize of an 8-bit RGB image (interleaved, `size` x `size`), mirrored
 * left-right when `flip`, into `out` (planar CHW) at `offset`, with a normalisation table of
 * `normalisationTable(mean, std)` (batch.ts; torchvision's float32 rounding).
 */
export function normaliseInto(
  rgb: Uint8Array, width: number, height: number, flip: boolean, table: Float32Array, out: Float32Array, offset: number,
): void {
  const plane = width * height;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const src = 3 * (row + (flip ? width - 1 - x : x));
      const dst = offset + row + x;
      out[dst] = table[rgb[src]];
      out[dst + plane] = table[256 + rgb[src + 1]];
      out[dst + 2 * plane] = table[512 + rgb[src + 2]];
    }
  }
}
