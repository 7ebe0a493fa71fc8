/**
 * PyTorch form of a trained evaluation network: one safetensors file holding the state dict
 * under the authors' keys (model.py's NetworkCIFAR / NetworkImageNet: `stem.0.weight`,
 * `cells.0._ops.0.op.1.weight`, `auxiliary_head.features.2.weight`, BN running statistics
 * and int64 `num_batches_tracked`), in state_dict() order, so that
 * `model.load_state_dict(safetensors.torch.load_file(path), strict=True)` loads it; its
 * `__metadata__` holds the genotype (JSON and the authors' Python form) and everything else
 * needed to rebuild the network (see metadata.ts). `pcdarts train --init-from` reads such a
 * file (or any file of those keys, e.g. one PyTorch saved) back.
 */
import type { EvalNetwork } from '../eval/network.js';
import { type SafetensorsInput, writeSafetensors } from '../nn/safetensors.js';
import { descriptionMetadata, type ModelDescription } from './metadata.js';

/** Every parameter and buffer of the network under its state-dict key, in PyTorch's order. */
export function pytorchStateDict(network: EvalNetwork): [string, SafetensorsInput][] {
  return network.stateEntries().map((entry) => [entry.name, {
    dtype: entry.dtype, shape: entry.tensor.shape, values: Float32Array.from(entry.tensor.data.subarray(0, entry.tensor.numel)),
  }]);
}

/** The safetensors bytes of the network's state dict with the description as metadata. */
export function exportPytorch(network: EvalNetwork, description: ModelDescription): Uint8Array {
  const hasHead = network.auxiliaryHead !== null;
  if (description.auxiliary !== hasHead) {
    throw new Error(`PyTorch export: the description says auxiliary ${description.auxiliary}, the network ${hasHead ? 'has' : 'has no'} auxiliary head`);
  }
  return writeSafetensors(pytorchStateDict(network), descriptionMetadata(description, 'pcdarts-pytorch'));
}
