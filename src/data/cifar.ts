/**
 * The CIFAR-10 binary version (https://www.cs.toronto.edu/~kriz/cifar.html): each record
 * is 1 label byte then 3072 pixel bytes, the red, green and blue 32x32 planes in row-major
 * order, which is already NCHW per image. Pure: decodes bytes already in memory.
 */

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
