/**
 * What an exported model says about itself: the architecture (network kind, genotype, C,
 * layers, classes, image channels, auxiliary head), the input it expects (image size,
 * per-channel mean and std of the normalisation) and the class names. Both exports carry it
 * as string key/values: ONNX `metadata_props`, safetensors `__metadata__`. Everything a
 * reader needs to rebuild the network or to feed it images (`pcdarts predict`, a web page)
 * is here, under the same keys in both formats.
 *
 * Also: reading the architecture back from a state dict's keys and shapes (so that a bare
 * state dict needs only its genotype), and building the network a description names.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { type Genotype, validateGenotype } from '../darts/genotype.js';
import { formatGenotypePython } from '../darts/genotype-python.js';
import { type EvalNetwork, NetworkCIFAR, NetworkImageNet } from '../eval/network.js';
import type { SafetensorsTensor } from '../nn/safetensors.js';

/** The authors' class names in model.py. */
export const NETWORK_KINDS = ['NetworkCIFAR', 'NetworkImageNet'] as const;
export type NetworkKind = (typeof NETWORK_KINDS)[number];

/** The architecture of an evaluation network, as far as its weights determine it (plus the genotype). */
export interface NetworkArchitecture {
  network: NetworkKind;
  genotype: Genotype;
  /** C of the first cells. */
  initChannels: number;
  layers: number;
  classes: number;
  /** Image channels (3 for colour; 1 for Fashion-MNIST). */
  inChannels: number;
  /** Whether the weights include the auxiliary head (a PyTorch export keeps it; ONNX never has it). */
  auxiliary: boolean;
}

/** An exported model: its architecture, the input it expects and what its outputs mean. */
export interface ModelDescription extends NetworkArchitecture {
  /** Input height and width the network was trained on. */
  imageSize: [number, number];
  classNames: string[];
  /** Per-channel normalisation: input = (pixel / 255 - mean) / std. */
  mean: number[];
  std: number[];
  /** The dataset the weights were trained on (null when unknown). */
  dataset: string | null;
  /** Version of pcdarts that wrote the export. */
  pcdartsVersion: string;
}

/** The package's version (package.json beside dist/ or src/). */
export function pcdartsVersion(): string {
  for (const relative of ['../../../package.json', '../../package.json']) {
    try {
      const value = JSON.parse(readFileSync(fileURLToPath(new URL(relative, import.meta.url)), 'utf8')) as { name?: string; version?: string };
      if (value.name === 'pcdarts' && typeof value.version === 'string') return value.version;
    } catch {
      // try the next candidate
    }
  }
  return 'unknown';
}

/** How the input tensor is made from an image (the metadata's `input` entry, for people reading it). */
export function inputDescription(description: ModelDescription): string {
  const [h, w] = description.imageSize;
  return `float32 NCHW [N, ${description.inChannels}, ${h}, ${w}]: pixel values / 255, minus mean, divided by std, per channel`;
}

/** String key/values of ONNX metadata_props and safetensors __metadata__. */
export function descriptionMetadata(description: ModelDescription, format: string): Record<string, string> {
  return {
    format,
    pcdarts_version: description.pcdartsVersion,
    network: description.network,
    genotype: JSON.stringify(description.genotype),
    genotype_python: formatGenotypePython(description.genotype),
    init_channels: String(description.initChannels),
    layers: String(description.layers),
    classes: String(description.classes),
    in_channels: String(description.inChannels),
    auxiliary: String(description.auxiliary),
    image_size: JSON.stringify(description.imageSize),
    class_names: JSON.stringify(description.classNames),
    mean: JSON.stringify(description.mean),
    std: JSON.stringify(description.std),
    dataset: description.dataset ?? '',
    input: inputDescription(description),
    output: `float32 [N, ${description.classes}]: logits (no softmax), in the order of class_names`,
  };
}

function positiveIntegerEntry(metadata: Record<string, string>, key: string, source: string): number {
  const value = Number(metadata[key]);
  if (!/^\d+$/.test(metadata[key] ?? '') || !(value >= 1)) {
    throw new Error(`${source}: metadata '${key}' should be a positive integer, got ${JSON.stringify(metadata[key] ?? null)}`);
  }
  return value;
}

function jsonEntry(metadata: Record<string, string>, key: string, source: string): unknown {
  try {
    return JSON.parse(metadata[key]);
  } catch {
    throw new Error(`${source}: metadata '${key}' is not JSON: ${JSON.stringify(metadata[key] ?? null)}`);
  }
}

function numberList(value: unknown, length: number, key: string, source: string): number[] {
  if (!Array.isArray(value) || value.length !== length || !value.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new Error(`${source}: metadata '${key}' should be a list of ${length} numbers, got ${JSON.stringify(value)}`);
  }
  return value as number[];
}

/** True when the metadata is a full description written by descriptionMetadata. */
export function hasDescription(metadata: Record<string, string> | null): metadata is Record<string, string> {
  return metadata !== null && typeof metadata.network === 'string' && typeof metadata.genotype === 'string'
    && typeof metadata.class_names === 'string';
}

/** Reads back what descriptionMetadata wrote; errors are one line naming the source and the key. */
export function parseDescriptionMetadata(metadata: Record<string, string>, source: string): ModelDescription {
  const network = metadata.network as NetworkKind;
  if (!(NETWORK_KINDS as readonly string[]).includes(network)) {
    throw new Error(`${source}: metadata 'network' should be ${NETWORK_KINDS.join(' or ')}, got ${JSON.stringify(metadata.network ?? null)}`);
  }
  const genotype = validateGenotype(jsonEntry(metadata, 'genotype', source), { source: `${source} (metadata 'genotype')` });
  const inChannels = positiveIntegerEntry(metadata, 'in_channels', source);
  const classes = positiveIntegerEntry(metadata, 'classes', source);
  const classNames = jsonEntry(metadata, 'class_names', source);
  if (!Array.isArray(classNames) || classNames.length !== classes || !classNames.every((n) => typeof n === 'string')) {
    throw new Error(`${source}: metadata 'class_names' should be a list of ${classes} strings`);
  }
  if (metadata.auxiliary !== 'true' && metadata.auxiliary !== 'false') {
    throw new Error(`${source}: metadata 'auxiliary' should be true or false, got ${JSON.stringify(metadata.auxiliary ?? null)}`);
  }
  const imageSize = numberList(jsonEntry(metadata, 'image_size', source), 2, 'image_size', source);
  return {
    network, genotype, inChannels, classes, classNames: classNames as string[],
    initChannels: positiveIntegerEntry(metadata, 'init_channels', source),
    layers: positiveIntegerEntry(metadata, 'layers', source),
    auxiliary: metadata.auxiliary === 'true',
    imageSize: [imageSize[0], imageSize[1]],
    mean: numberList(jsonEntry(metadata, 'mean', source), inChannels, 'mean', source),
    std: numberList(jsonEntry(metadata, 'std', source), inChannels, 'std', source),
    dataset: metadata.dataset ? metadata.dataset : null,
    pcdartsVersion: metadata.pcdarts_version ?? 'unknown',
  };
}

/** Architecture facts a state dict's keys and shapes determine (everything but the genotype). */
export type InferredArchitecture = Omit<NetworkArchitecture, 'genotype'>;

/**
 * Reads the network kind, C, layers, classes, image channels and the presence of the
 * auxiliary head from state-dict keys and shapes (keys without a `model.` prefix):
 * `stem.0.weight` [3C, in, 3, 3] (NetworkCIFAR) or `stem0.0.weight` [C/2, in, 3, 3] and
 * `stem0.3.weight` [C, C/2, 3, 3] (NetworkImageNet), `cells.<i>.` prefixes,
 * `classifier.weight` [classes, features]. Throws a one-line error when they are missing.
 */
export function inferArchitecture(tensors: ReadonlyMap<string, Pick<SafetensorsTensor, 'shape'>>, source: string): InferredArchitecture {
  const shape = (key: string, rank: number): readonly number[] => {
    const t = tensors.get(key);
    if (t === undefined) throw new Error(`${source}: no tensor '${key}': not a state dict of the authors' NetworkCIFAR or NetworkImageNet`);
    if (t.shape.length !== rank) throw new Error(`${source}: '${key}' has shape [${t.shape.join(', ')}], expected ${rank} dimensions`);
    return t.shape;
  };
  const imagenet = tensors.has('stem0.0.weight');
  let initChannels: number;
  let inChannels: number;
  if (imagenet) {
    initChannels = shape('stem0.3.weight', 4)[0];
    inChannels = shape('stem0.0.weight', 4)[1];
  } else {
    const stem = shape('stem.0.weight', 4);
    if (stem[0] % 3 !== 0) throw new Error(`${source}: 'stem.0.weight' has ${stem[0]} output channels, expected 3C`);
    initChannels = stem[0] / 3;
    inChannels = stem[1];
  }
  let layers = 0;
  for (const key of tensors.keys()) {
    const match = /^cells\.(\d+)\./.exec(key);
    if (match) layers = Math.max(layers, Number(match[1]) + 1);
  }
  if (layers === 0) throw new Error(`${source}: no 'cells.<i>.' tensors: not a state dict of the authors' NetworkCIFAR or NetworkImageNet`);
  return {
    network: imagenet ? 'NetworkImageNet' : 'NetworkCIFAR',
    initChannels, layers, inChannels,
    classes: shape('classifier.weight', 2)[0],
    auxiliary: [...tensors.keys()].some((key) => key.startsWith('auxiliary_head.')),
  };
}

/** The evaluation network of an architecture (fresh weights, training mode: load, then eval()). */
export function buildNetwork(architecture: NetworkArchitecture, options: { auxiliary?: boolean } = {}): EvalNetwork {
  const networkOptions = {
    genotype: architecture.genotype, channels: architecture.initChannels, layers: architecture.layers,
    classes: architecture.classes, inChannels: architecture.inChannels,
    auxiliary: options.auxiliary ?? architecture.auxiliary, dropPathProb: 0,
  };
  return architecture.network === 'NetworkImageNet' ? new NetworkImageNet(networkOptions) : new NetworkCIFAR(networkOptions);
}

/** The architecture of a built network (auxiliary: whether it has the head). */
export function networkArchitecture(network: EvalNetwork): NetworkArchitecture {
  const { channels, layers, classes, inChannels } = network.config;
  return {
    network: network instanceof NetworkImageNet ? 'NetworkImageNet' : 'NetworkCIFAR',
    genotype: network.genotype, initChannels: channels, layers, classes, inChannels,
    auxiliary: network.auxiliaryHead !== null,
  };
}
