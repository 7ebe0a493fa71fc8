/**
 * How long a training run will take on this machine, before it starts: one timed inference
 * pass of a scratch copy of the run's network on a few blank images gives the machine's
 * multiply-add rate for that network; a training step costs TRAIN_STEP_FACTOR inference
 * passes (backward is about twice the forward, plus drop path, the auxiliary head and the
 * optimiser). Nothing of the run changes (the scratch network leaves the generator as it was).
 */
import { noGrad } from '../tensor/autograd.js';
import { tidy, zeros } from '../tensor/tensor.js';
import { buildTrainNetwork, type TrainConfig, trainNetworkOptions, withScratchNetwork } from './train-settings.js';

/** Seconds of a training image over seconds of an inference image (measured here: see README, first hour). */
export const TRAIN_STEP_FACTOR = 3.5;

/** Images of the timed pass, and of the untimed one before it (small: the estimate itself must not take long). */
const CALIBRATION_IMAGES = 8;
const WARM_UP_IMAGES = 2;

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
      const pass = (images: number): number => {
        const started = performance.now();
        noGrad(() => tidy(() => { network.forward(zeros([images, data.channels, data.imageSize, data.imageSize])); }));
        return (performance.now() - started) / 1000;
      };
      pass(WARM_UP_IMAGES); // the first pass also compiles and allocates
      return pass(CALIBRATION_IMAGES);
    },
  );
  const inferenceSecondsPerImage = seconds / CALIBRATION_IMAGES;
  const secondsPerEpoch = inferenceSecondsPerImage * (TRAIN_STEP_FACTOR * data.trainImages + data.evaluatedImages);
  return { inferenceSecondsPerImage, secondsPerEpoch, seconds: secondsPerEpoch * config.epochs };
}

/** "about 25 min", "about 3.1 h", "about 4 days". */
export function formatEstimate(seconds: number): string {
  if (!Number.isFinite(seconds)) return 'unknown';
  if (seconds < 90) return `about ${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 90 * 60) return `about ${Math.round(seconds / 60)} min`;
  if (seconds < 48 * 3600) return `about ${(seconds / 3600).toFixed(seconds < 10 * 3600 ? 1 : 0)} h`;
  return `about ${Math.round(seconds / 86400)} days`;
}
