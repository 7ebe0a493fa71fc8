/**
 * The search's train/validation split (spec section 6, the authors' train_search.py):
 * the first floor(train_portion * count) images in file order train the weights, the rest
 * the architecture. No shuffling here: a dataset stored sorted by class must be stored
 * shuffled instead.
 */

export interface TrainValidSplit {
  /** Indices whose images train the weights. */
  readonly train: Int32Array;
  /** Indices whose images train the architecture. */
  readonly valid: Int32Array;
}

export function splitTrainValid(count: number, trainPortion: number): TrainValidSplit {
  if (!Number.isInteger(count) || count < 0) throw new Error(`splitTrainValid: count must be a non-negative integer, got ${count}`);
  if (!(trainPortion >= 0 && trainPortion <= 1)) throw new Error(`splitTrainValid: train portion must be in [0, 1], got ${trainPortion}`);
  const boundary = Math.floor(trainPortion * count);
  const train = new Int32Array(boundary);
  const valid = new Int32Array(count - boundary);
  for (let i = 0; i < boundary; i++) train[i] = i;
  for (let i = boundary; i < count; i++) valid[i - boundary] = i;
  return { train, valid };
}
