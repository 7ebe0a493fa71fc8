/**
 * What the main thread and the decode workers (decode-worker.ts) exchange: one message per
 * job, everything else through shared memory (see the control block in decode-worker.ts).
 */

/** Byte offset of the error message in a job's control block. */
export const CONTROL_MESSAGE_OFFSET = 32;
/** Bytes of a job's control block (header + message). */
export const CONTROL_BYTES = CONTROL_MESSAGE_OFFSET + 1024;

export interface DecodeJob {
  /**
   * 'train': random resized crop (+ flip, + jitter); 'eval': resize + centre crop; 'verify':
   * decode only; 'prepare': write a copy with the short side reduced to `size` (prepare.ts).
   */
  readonly mode: 'train' | 'eval' | 'verify' | 'prepare';
  /** Absolute split folder. */
  readonly root: string;
  /** The items, relative to root. */
  readonly files: readonly string[];
  /** Output side. */
  readonly size: number;
  readonly mean: readonly number[];
  readonly std: readonly number[];
  /** 'train': the run's seed and the stream's key word. */
  readonly seed: number;
  readonly stream: number;
  /** 'train': per item [epoch, position], the rest of its augmentation key. */
  readonly keys?: readonly (readonly [number, number])[];
  readonly flip: boolean;
  /** 'train': ColorJitter strengths (brightness, contrast, saturation, hue), or null. */
  readonly jitter: readonly [number, number, number, number] | null;
  /** 'train': cutout side (0: off). */
  readonly cutout: number;
  /** The job's control block (CONTROL_BYTES). */
  readonly control: SharedArrayBuffer;
  /** 'train' / 'eval': float32 pixels, items.length x 3 x size x size. */
  readonly pixels?: SharedArrayBuffer;
  /** 'verify' / 'prepare': Int32 per item: 1 failed; 'prepare': 2 copied as it was, 3 resized, 4 already there. */
  readonly status?: SharedArrayBuffer;
  /** 'prepare': the output folder (same relative paths) and the JPEG / WebP quality. */
  readonly outRoot?: string;
  readonly quality?: number;
}
