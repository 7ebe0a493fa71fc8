/**
 * safetensors read/write: 8-byte little-endian header length, a JSON header
 * {name: {dtype, shape, data_offsets: [begin, end]}} (plus optional __metadata__), raw
 * little-endian data. The one state-dict format of the project (weights, optimiser state,
 * fixtures, exports).
 */
export type SafetensorsDtype = 'F32' | 'F64' | 'I64' | 'I32' | 'U8';

export interface SafetensorsTensor {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** F32 -> Float32Array, F64 -> Float64Array, I64 -> Float64Array (exact up to 2^53), I32 -> Int32Array, U8 -> Uint8Array. */
  readonly values: Float32Array | Float64Array | Int32Array | Uint8Array;
}

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F64: 8, I64: 8, I32: 4, U8: 1 };

type Header = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;

function readHeader(bytes: Uint8Array, source: string): { header: Header; dataStart: number } {
  if (bytes.length < 8) throw new Error(`${source}: truncated: ${bytes.length} bytes, expected at least an 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (8 + headerLength > bytes.length) {
    throw new Error(`${source}: truncated: header of ${headerLength} bytes does not fit in ${bytes.length} bytes`);
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  } catch {
    throw new Error(`${source}: not a safetensors file (header is not JSON)`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new Error(`${source}: not a safetensors file (header is not a JSON object)`);
  }
  return { header: header as Header, dataStart: 8 + headerLength };
}

/** The optional string metadata (`__metadata__`) of a safetensors file; null when it has none. */
export function readSafetensorsMetadata(bytes: Uint8Array, source = 'safetensors'): Record<string, string> | null {
  const metadata = (readHeader(bytes, source).header as Record<string, unknown>).__metadata__;
  if (metadata === undefined) return null;
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)
    || !Object.values(metadata).every((v) => typeof v === 'string')) {
    throw new Error(`${source}: __metadata__ should map names to strings`);
  }
  return metadata as Record<string, string>;
}

export function readSafetensors(bytes: Uint8Array, source = 'safetensors'): Map<string, SafetensorsTensor> {
  const { header, dataStart } = readHeader(bytes, source);
  const out = new Map<string, SafetensorsTensor>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (info === null || typeof info !== 'object' || !Array.isArray(info.shape) || !Array.isArray(info.data_offsets)
      || !info.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new Error(`${source}: tensor '${name}' has a malformed header entry`);
    }
    const dtype = info.dtype as SafetensorsDtype;
    if (!Object.hasOwn(BYTES, dtype)) throw new Error(`${source}: tensor '${name}' has unsupported dtype ${info.dtype}`);
    const numel = info.shape.reduce((a, b) => a * b, 1);
    const [begin, end] = info.data_offsets;
    if (end - begin !== numel * BYTES[dtype] || dataStart + end > bytes.length) {
      throw new Error(`${source}: tensor '${name}' data [${begin}, ${end}) is truncated or does not match shape [${info.shape.join(', ')}]`);
    }
    // A copy (aligned, owned): Buffer.slice would return a view into a shared pool.
    const raw = Uint8Array.prototype.slice.call(bytes, dataStart + begin, dataStart + end);
    const dv = new DataView(raw.buffer);
    let values: SafetensorsTensor['values'];
    switch (dtype) {
      case 'F32': {
        values = new Float32Array(raw.buffer, 0, numel); // x86/ARM hosts are little-endian, as the format
        break;
      }
      case 'F64': {
        const v = new Float64Array(numel);
        for (let i = 0; i < numel; i++) v[i] = dv.getFloat64(i * 8, true);
        values = v;
        break;
      }
      case 'I64': {
        const v = new Float64Array(numel);
        for (let i = 0; i < numel; i++) v[i] = Number(dv.getBigInt64(i * 8, true));
        values = v;
        break;
      }
      case 'I32': {
        const v = new Int32Array(numel);
        for (let i = 0; i < numel; i++) v[i] = dv.getInt32(i * 4, true);
        values = v;
        break;
      }
      case 'U8':
        values = raw;
        break;
    }
    out.set(name, { dtype, shape: [...info.shape], values });
  }
  return out;
}

export interface SafetensorsInput {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly values: ArrayLike<number>;
}

/** Serialises tensors in the given order, with optional string metadata. */
export function writeSafetensors(tensors: Iterable<[string, SafetensorsInput]>, metadata?: Record<string, string>): Uint8Array {
  const entries = [...tensors];
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (t.values.length !== numel) throw new Error(`safetensors: '${name}' has ${t.values.length} values for shape [${t.shape.join(', ')}]`);
    const size = numel * BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let headerText = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned (allowed by the format).
  while ((8 + Buffer.byteLength(headerText)) % 8 !== 0) headerText += ' ';
  const headerBytes = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const [, t] of entries) {
    const numel = t.values.length;
    switch (t.dtype) {
      case 'F32': for (let i = 0; i < numel; i++, at += 4) dv.setFloat32(at, t.values[i], true); break;
      case 'F64': for (let i = 0; i < numel; i++, at += 8) dv.setFloat64(at, t.values[i], true); break;
      case 'I64': for (let i = 0; i < numel; i++, at += 8) dv.setBigInt64(at, BigInt(Math.round(t.values[i])), true); break;
      case 'I32': for (let i = 0; i < numel; i++, at += 4) dv.setInt32(at, t.values[i], true); break;
      case 'U8': for (let i = 0; i < numel; i++, at += 1) dv.setUint8(at, t.values[i]); break;
    }
  }
  return out;
}
