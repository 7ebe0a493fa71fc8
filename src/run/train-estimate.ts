/**
 * How long a training run (or a search) will take on this machine, before it starts: one timed inference
 * pass of a scratch copy of the run's network on a few blank images gives the machine's
 * multiply-add rate for that network; a training step costs TRAIN_STEP_FACTOR inference
 * passes (backward is about twice the forward, plus drop path, the auxiliary head and the
 * optimiser). Nothing of the run changes (the scratch network leaves the generator as it was).
 */
import { SearchNetwork } from '../darts/search-network.js';
import { disposeModule } from '../nn/layers.js';
import { noGrad } from '../tensor/autograd.js';
import { defaultRandom } from '../tensor/random.js';
import { type Tensor, tidy, zeros } from '../tensor/tensor.js';
import type { SearchConfig } from './search.js';
import { searchNetworkConfig } from './search.js';
import { buildTrainNetwork, type TrainConfig, trainNetworkOptions, withScratchNetwork } from './train-settings.js';

/** Seconds of a training image over seconds of an inference image (measured here: see README, first hour). */
export const TRAIN_STEP_FACTOR = 3.5;

/** Images of the timed pass, and of the untimed one before it (small: the estimate itself must not take long). */
const CALIBRATION_IMAGES = 8;
const WARM_UP_IMAGES = 2;

/** A timed pass shorter than this is repeated with more images (up to a batch): small networks cost per call, not per image. */
const MIN_TIMED_SECONDS = 0.5;

/**
 * Seconds per image of `forward` (no gradients) on blank images: an untimed pass, a timed one
 * of CALIBRATION_IMAGES, and, when that was quick, one of as many images as half a second
 * takes (at most a batch), so that a small network is timed at the batch it runs.
 */
function secondsPerImage(forward: (x: Tensor) => void, data: { channels: number; imageSize: number }, batchSize: number): number {
  const pass = (images: number): number => {
    const started = performance.now();
    noGrad(() => tidy(() => { forward(zeros([images, data.channels, data.imageSize, data.imageSize])); }));
    return (performance.now() - started) / 1000;
  };
  pass(WARM_UP_IMAGES); // the first pass also compiles and allocates
  let images = CALIBRATION_IMAGES;
  let seconds = pass(images);
  const more = Math.min(batchSize, Math.ceil((images * MIN_TIMED_SECONDS) / Math.max(seconds, 1e-3)));
  if (seconds < MIN_TIMED_SECONDS && more > images) {
    images = more;
    seconds = pass(images);
  }
  return seconds / images;
}

export interface TrainEstimate {
  /** Seconds of one inference image of this network on this machine. */
  inferenceSecondsPerImage: number;
  /** Seconds of one epoch: training images, plus the validation or test pass at its end. */
  secondsPerEpoch: number;
  /** Seconds of the whole run (all epochs, from the start). */
  seconds: number;
}

export interface EstimateData {
  channels: number;
  imageSize: number;
  classes: number;
  trainImages: number;
  /** Images evaluated at the end of every epoch (the validation half, or the test split). */
  evaluatedImages: number;
}

/** Times one inference pass of the run's network (the active backend) and scales it to the run. */
export function estimateTrainTime(config: TrainConfig, data: EstimateData): TrainEstimate {
  const seconds = withScratchNetwork(
    () => buildTrainNetwork(config.network, trainNetworkOptions(config, data.channels, data.classes)),
    (network) => {
      network.eval();
      return secondsPerImage((x) => { network.forward(x); }, data, config.batchSize);
    },
  );
  const inferenceSecondsPerImage = seconds;
  const secondsPerEpoch = inferenceSecondsPerImage * (TRAIN_STEP_FACTOR * data.trainImages + data.evaluatedImages);
  return { inferenceSecondsPerImage, secondsPerEpoch, seconds: secondsPerEpoch * config.epochs };
}

/** Seconds of an architecture step over seconds of a weight step: first order about 1, the unrolled second order about 3. */
const ARCH_STEP_FACTOR: Record<number, number> = { 1: 1, 2: 3 };

export interface SearchEstimateData {
  channels: number;
  imageSize: number;
  classes: number;
  /** Images of the weights' half and of the architecture's half. */
  weightImages: number;
  archImages: number;
}

/**
 * A search's time: a weight step costs TRAIN_STEP_FACTOR inference passes of the search
 * network, an architecture step (after the warm-up) as much again (three times that for the
 * second order), and every epoch ends with an inference pass over the architecture's half.
 */
export function estimateSearchTime(config: SearchConfig & { order?: number }, data: SearchEstimateData): TrainEstimate {
  const saved = defaultRandom().getState();
  let network: SearchNetwork | null = null;
  let seconds: number;
  try {
    network = new SearchNetwork(searchNetworkConfig(config, data.channels, data.classes));
    const model = network;
    model.eval();
    seconds = secondsPerImage((x) => { model.forward(x); }, data, config.batchSize);
  } finally {
    if (network !== null) disposeModule(network);
    defaultRandom().setState(saved);
  }
  const perImage = seconds;
  const weights = TRAIN_STEP_FACTOR * data.weightImages + data.archImages;
  const arch = TRAIN_STEP_FACTOR * (ARCH_STEP_FACTOR[config.order ?? 1] ?? 1) * data.weightImages;
  const warmup = Math.min(config.warmupEpochs, config.epochs);
  const total = perImage * (weights * config.epochs + arch * (config.epochs - warmup));
  return { inferenceSecondsPerImage: perImage, secondsPerEpoch: perImage * (weights + arch), seconds: total };
}

/** "about 25 min", "about 3.1 h", "about 4 days". */
export function formatEstimate(seconds: number): string {
  if (!Number.isFinite(seconds)) return 'unknown';
  if (seconds < 90) return `about ${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 90 * 60) return `about ${Math.round(seconds / 60)} min`;
  if (seconds < 48 * 3600) return `about ${(seconds / 3600).toFixed(seconds < 10 * 3600 ? 1 : 0)} h`;
  return `about ${Math.round(seconds / 86400)} days`;
}
