/**
 * The CIFAR-10 binary version (https://www.cs.toronto.edu/~kriz/cifar.html): each record
 * is 1 label byte then 3072 pixel bytes, the red, green and blue 32x32 planes in row-major
 * order, which is already NCHW per image. Also CIFAR-100's binary records and both datasets'
 * "python version" (pickled batches, read with pickle.ts). Pure: decodes bytes already in memory.
 */
import { type NumpyArray, numpyIntegers, PickleDict, type PickleValue } from './pickle.js';

export const CIFAR10_SIZE = 32;
export const CIFAR10_CHANNELS = 3;
export const CIFAR10_CLASSES = 10;
export const CIFAR10_IMAGE_BYTES = CIFAR10_CHANNELS * CIFAR10_SIZE * CIFAR10_SIZE;
export const CIFAR10_RECORD_BYTES = 1 + CIFAR10_IMAGE_BYTES;
export const CIFAR10_TRAIN_FILES: readonly string[] = [
  'data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin',
];
export const CIFAR10_TEST_FILES: readonly string[] = ['test_batch.bin'];

/** Number of records in a CIFAR-10 batch file of this size; throws if it is not whole. */
export function cifarRecordCount(byteLength: number, fileName: string): number {
  if (byteLength === 0) throw new Error(`${fileName}: empty: expected records of ${CIFAR10_RECORD_BYTES} bytes (1 label + ${CIFAR10_IMAGE_BYTES} pixels)`);
  if (byteLength % CIFAR10_RECORD_BYTES !== 0) {
    throw new Error(`${fileName}: truncated: expected a multiple of ${CIFAR10_RECORD_BYTES} bytes (1 label + ${CIFAR10_IMAGE_BYTES} pixels per record), got ${byteLength}`);
  }
  return byteLength / CIFAR10_RECORD_BYTES;
}

/**
 * Decodes a CIFAR-10 batch into `images` / `labels` starting at record `first`; returns the
 * number of records written. The caller sizes the outputs (see `cifarRecordCount`).
 */
export function decodeCifarBatch(
  bytes: Uint8Array, fileName: string, images: Uint8Array, labels: Int32Array, first: number,
): number {
  const records = cifarRecordCount(bytes.length, fileName);
  if ((first + records) * CIFAR10_IMAGE_BYTES > images.length || first + records > labels.length) {
    throw new Error(`decodeCifarBatch: ${fileName}: output holds fewer than ${first + records} records`);
  }
  for (let r = 0; r < records; r++) {
    const offset = r * CIFAR10_RECORD_BYTES;
    const label = bytes[offset];
    if (label >= CIFAR10_CLASSES) {
      throw new Error(`${fileName}: label ${label} of record ${r} is out of range: expected 0..${CIFAR10_CLASSES - 1}`);
    }
    labels[first + r] = label;
    images.set(bytes.subarray(offset + 1, offset + CIFAR10_RECORD_BYTES), (first + r) * CIFAR10_IMAGE_BYTES);
  }
  return records;
}

// ------------------------------------------------------------------------------------------
// CIFAR-100 (binary version): 1 coarse label byte, 1 fine label byte, then 3072 pixel bytes.

export const CIFAR100_CLASSES = 100;
export const CIFAR100_RECORD_BYTES = 2 + CIFAR10_IMAGE_BYTES;
export const CIFAR100_TRAIN_FILES: readonly string[] = ['train.bin'];
export const CIFAR100_TEST_FILES: readonly string[] = ['test.bin'];

/** Records in a CIFAR-100 binary file of this size; throws if it is not whole. */
export function cifar100RecordCount(byteLength: number, fileName: string): number {
  if (byteLength === 0) throw new Error(`${fileName}: empty: expected records of ${CIFAR100_RECORD_BYTES} bytes (coarse label, fine label, ${CIFAR10_IMAGE_BYTES} pixels)`);
  if (byteLength % CIFAR100_RECORD_BYTES !== 0) {
    throw new Error(`${fileName}: truncated: expected a multiple of ${CIFAR100_RECORD_BYTES} bytes (coarse label, fine label, ${CIFAR10_IMAGE_BYTES} pixels per record), got ${byteLength}`);
  }
  return byteLength / CIFAR100_RECORD_BYTES;
}

/** Decodes a CIFAR-100 binary file (fine labels) into `images` / `labels` from record `first`. */
export function decodeCifar100Batch(bytes: Uint8Array, fileName: string, images: Uint8Array, labels: Int32Array, first: number): number {
  const records = cifar100RecordCount(bytes.length, fileName);
  if ((first + records) * CIFAR10_IMAGE_BYTES > images.length || first + records > labels.length) {
    throw new Error(`decodeCifar100Batch: ${fileName}: output holds fewer than ${first + records} records`);
  }
  for (let r = 0; r < records; r++) {
    const offset = r * CIFAR100_RECORD_BYTES;
    const fine = bytes[offset + 1];
    if (fine >= CIFAR100_CLASSES) throw new Error(`${fileName}: fine label ${fine} of record ${r} is out of range: expected 0..${CIFAR100_CLASSES - 1}`);
    labels[first + r] = fine;
    images.set(bytes.subarray(offset + 2, offset + CIFAR100_RECORD_BYTES), (first + r) * CIFAR10_IMAGE_BYTES);
  }
  return records;
}

// ------------------------------------------------------------------------------------------
// The "python version" of both: pickled dicts {b'data': uint8 array (N, 3072), b'labels' or
// b'fine_labels': list of N ints, ...}; the rows are the same R, G, B planes as the binary files.

export const CIFAR10_PYTHON_TRAIN_FILES: readonly string[] = ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5'];
export const CIFAR10_PYTHON_TEST_FILES: readonly string[] = ['test_batch'];
export const CIFAR100_PYTHON_TRAIN_FILES: readonly string[] = ['train'];
export const CIFAR100_PYTHON_TEST_FILES: readonly string[] = ['test'];

/** The images and labels of an unpickled CIFAR batch; every problem names the file. */
export function cifarBatchFromPickle(
  batch: PickleValue, fileName: string, labelKey: 'labels' | 'fine_labels', classes: number,
): { images: Uint8Array; labels: Int32Array } {
  if (!(batch instanceof PickleDict)) throw new Error(`${fileName}: expected a pickled dict with 'data' and '${labelKey}', got another object`);
  const data = batch.get('data');
  const labelValue = batch.get(labelKey);
  if (data === undefined || labelValue === undefined) {
    throw new Error(`${fileName}: expected the keys 'data' and '${labelKey}', found ${[...batch.entries.keys()].map((k) => `'${k}'`).join(', ') || 'none'}`);
  }
  if (typeof data !== 'object' || data === null || (data as NumpyArray).kind !== 'ndarray') throw new Error(`${fileName}: 'data' is not a numpy array`);
  const array = data as NumpyArray;
  if (!/^[|<=]?u1$/.test(array.dtype) || array.shape.length !== 2 || array.shape[1] !== CIFAR10_IMAGE_BYTES || array.fortranOrder) {
    throw new Error(`${fileName}: 'data' must be a C-order uint8 array of shape (N, ${CIFAR10_IMAGE_BYTES}), got ${array.dtype} (${array.shape.join(', ')})${array.fortranOrder ? ' in Fortran order' : ''}`);
  }
  const count = array.shape[0];
  if (array.data.length !== count * CIFAR10_IMAGE_BYTES) throw new Error(`${fileName}: truncated: 'data' holds ${array.data.length} bytes, expected ${count} x ${CIFAR10_IMAGE_BYTES}`);
  let values: ArrayLike<unknown>;
  if (Array.isArray(labelValue)) values = labelValue;
  else if (typeof labelValue === 'object' && labelValue !== null && (labelValue as NumpyArray).kind === 'ndarray') values = numpyIntegers(labelValue as NumpyArray, `${fileName}: '${labelKey}'`);
  else throw new Error(`${fileName}: '${labelKey}' must be a list of ints`);
  if (values.length !== count) throw new Error(`${fileName}: label count does not match: expected ${count} labels (as 'data' has rows), got ${values.length}`);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const v = values[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= classes) {
      throw new Error(`${fileName}: label ${String(v)} of image ${i} is out of range: expected 0..${classes - 1}`);
    }
    labels[i] = v;
  }
  return { images: array.data, labels };
}

/** Class names from a pickled meta file (batches.meta: 'label_names'; meta: 'fine_label_names'), or null. */
export function cifarClassNamesFromPickle(meta: PickleValue, key: 'label_names' | 'fine_label_names', classes: number): string[] | null {
  if (!(meta instanceof PickleDict)) return null;
  const names = meta.get(key);
  if (!Array.isArray(names) || names.length !== classes) return null;
  const decoder = new TextDecoder();
  return names.map((n) => (typeof n === 'string' ? n : n instanceof Uint8Array ? decoder.decode(n) : String(n)));
}
