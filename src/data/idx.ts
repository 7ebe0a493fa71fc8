/**
 * The idx format of MNIST / Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): a 4-byte
 * magic (0, 0, element type, number of dimensions), the dimensions as big-endian uint32,
 * then the elements. Only unsigned bytes (type 0x08) are supported, which is what both
 * datasets use. Pure: decoding and encoding of bytes already in memory (gzip is handled by
 * the file loader).
 */

/** idx magic numbers: 0x0803 (ubyte, 3 dims) for images, 0x0801 (ubyte, 1 dim) for labels. */
export const IDX_IMAGES_MAGIC = 2051;
export const IDX_LABELS_MAGIC = 2049;

const IDX_UBYTE = 0x08;

export interface IdxArray {
  readonly dims: number[];
  readonly data: Uint8Array;
}

/**
 * Decodes an idx buffer. `fileName` names the source in errors; `expectedMagic`, when
 * given, is checked (2051 for images, 2049 for labels). The data is a view into `bytes`.
 */
export function decodeIdx(bytes: Uint8Array, fileName: string, expectedMagic?: number): IdxArray {
  if (bytes.length < 4) {
    throw new Error(`${fileName}: truncated: expected at least 4 bytes of idx header, got ${bytes.length}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  const ndims = bytes[3];
  if (expectedMagic !== undefined && magic !== expectedMagic) {
    throw new Error(`${fileName}: bad magic number: expected ${expectedMagic}, got ${magic} (not an idx ${expectedMagic === IDX_IMAGES_MAGIC ? 'image' : 'label'} file)`);
  }
  if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== IDX_UBYTE || ndims === 0) {
    throw new Error(`${fileName}: bad magic number: expected an unsigned-byte idx file (0x000008nn), got 0x${magic.toString(16).padStart(8, '0')}`);
  }
  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) {
    throw new Error(`${fileName}: truncated: expected at least ${headerBytes} bytes of idx header, got ${bytes.length}`);
  }
  const dims: number[] = [];
  let elements = 1;
  for (let d = 0; d < ndims; d++) {
    const size = view.getUint32(4 + 4 * d, false);
    dims.push(size);
    elements *= size;
  }
  const expectedBytes = headerBytes + elements;
  if (bytes.length < expectedBytes) {
    throw new Error(`${fileName}: truncated: expected ${expectedBytes} bytes, got ${bytes.length}`);
  }
  if (bytes.length > expectedBytes) {
    throw new Error(`${fileName}: wrong size: expected ${expectedBytes} bytes for dimensions ${dims.join('x')}, got ${bytes.length}`);
  }
  return { dims, data: bytes.subarray(headerBytes, expectedBytes) };
}

/** Encodes unsigned bytes with the given dimensions as an idx buffer. */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Uint8Array {
  const elements = dims.reduce((a, b) => a * b, 1);
  if (elements !== data.length) {
    throw new Error(`encodeIdx: dimensions ${dims.join('x')} hold ${elements} elements, data has ${data.length}`);
  }
  if (dims.length === 0 || dims.length > 255) throw new Error(`encodeIdx: bad number of dimensions ${dims.length}`);
  const headerBytes = 4 + 4 * dims.length;
  const out = new Uint8Array(headerBytes + elements);
  const view = new DataView(out.buffer);
  out[2] = IDX_UBYTE;
  out[3] = dims.length;
  dims.forEach((size, d) => view.setUint32(4 + 4 * d, size, false));
  out.set(data, headerBytes);
  return out;
}

/** Decodes an idx image file (magic 2051, dims count x rows x cols). */
export function decodeIdxImages(bytes: Uint8Array, fileName: string): { count: number; rows: number; cols: number; pixels: Uint8Array } {
  const { dims, data } = decodeIdx(bytes, fileName, IDX_IMAGES_MAGIC);
  return { count: dims[0], rows: dims[1], cols: dims[2], pixels: data };
}

/** Decodes an idx label file (magic 2049, one dimension); every label must be < `classes`. */
export function decodeIdxLabels(bytes: Uint8Array, fileName: string, classes: number): Int32Array {
  const { data } = decodeIdx(bytes, fileName, IDX_LABELS_MAGIC);
  const labels = new Int32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    if (data[i] >= classes) {
      throw new Error(`${fileName}: label ${data[i]} of item ${i} is out of range: expected 0..${classes - 1}`);
    }
    labels[i] = data[i];
  }
  return labels;
}
