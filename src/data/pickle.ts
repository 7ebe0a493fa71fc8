/**
 * A minimal, safe reader of Python pickles: what the CIFAR "python version" files use and
 * nothing more. Dicts, lists, tuples, ints, floats, booleans, None, str and bytes (Python 2 str
 * opcodes read as bytes, as pickle.load(..., encoding='bytes') does), and numpy arrays (the
 * ndarray/_reconstruct form of protocols 0-4 and the _frombuffer form of protocol 5). Any
 * other global is refused: nothing is ever called or constructed from the file.
 *
 * Why not an npm reader: pickleparser (0.2.1, the maintained one) decodes Python 2's
 * BINSTRING opcodes, which hold the official CIFAR files' keys and all their pixel bytes, as
 * windows-1252 text, and builds numpy arrays only through user-registered constructors;
 * jpickle and unpickle stop at older protocols. Pure: no Node imports.
 */

/** A numpy array: its dtype ('u1', '<i8', ...), shape and raw little-endian bytes (C order). */
export interface NumpyArray {
  readonly kind: 'ndarray';
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly fortranOrder: boolean;
  readonly data: Uint8Array;
}

export type PickleValue =
  | null | boolean | number | bigint | string | Uint8Array | PickleValue[] | PickleDict | NumpyArray | PickleTuple;

/** A tuple (kept apart from lists only where it matters: REDUCE arguments). */
export interface PickleTuple {
  readonly kind: 'tuple';
  readonly items: PickleValue[];
}

/**
 * A dict with str and bytes keys both as strings (bytes keys decoded as Latin-1, so b'data'
 * and 'data' are the same key, as for the files of Python 2 and 3).
 */
export class PickleDict {
  readonly entries = new Map<string, PickleValue>();

  get(key: string): PickleValue | undefined {
    return this.entries.get(key);
  }
}

/** A global the reader knows: what REDUCE / BUILD on it produce. */
type Known = 'reconstruct' | 'ndarray' | 'dtype' | 'codecs.encode' | 'frombuffer';

interface GlobalRef { readonly kind: 'global'; readonly known: Known }
interface DtypeValue { readonly kind: 'dtype'; str: string; order: string }
interface PendingArray { readonly kind: 'pending-array'; state: PickleValue[] | null }

type Item = PickleValue | GlobalRef | DtypeValue | PendingArray | typeof MARK;

const MARK = Symbol('mark');

const KNOWN_GLOBALS: Record<string, Known> = {
  'numpy.core.multiarray _reconstruct': 'reconstruct',
  'numpy._core.multiarray _reconstruct': 'reconstruct',
  'numpy ndarray': 'ndarray',
  'numpy dtype': 'dtype',
  'numpy.core.numeric _frombuffer': 'frombuffer',
  'numpy._core.numeric _frombuffer': 'frombuffer',
  '_codecs encode': 'codecs.encode',
};

const latin1 = (bytes: Uint8Array): string => {
  let s = '';
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
};

function isObject(value: unknown, kind: string): boolean {
  return typeof value === 'object' && value !== null && (value as { kind?: string }).kind === kind;
}

/** Parses one pickle; `name` names the file in errors. */
export function readPickle(bytes: Uint8Array, name: string): PickleValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let pos = 0;
  let stack: Item[] = [];
  const marks: Item[][] = [];
  const memo = new Map<number, Item>();
  const fail = (what: string): never => { throw new Error(`${name}: not a readable pickle: ${what} at byte ${pos}`); };
  const need = (n: number): void => { if (pos + n > bytes.length) fail(`truncated (${n} more bytes expected)`); };
  const take = (n: number): Uint8Array => { need(n); const out = bytes.subarray(pos, pos + n); pos += n; return out; };
  const u8 = (): number => { need(1); return bytes[pos++]; };
  const u16 = (): number => { need(2); const v = view.getUint16(pos, true); pos += 2; return v; };
  const i32 = (): number => { need(4); const v = view.getInt32(pos, true); pos += 4; return v; };
  const u32 = (): number => { need(4); const v = view.getUint32(pos, true); pos += 4; return v; };
  const u64 = (): number => {
    need(8);
    const v = view.getUint32(pos, true) + 2 ** 32 * view.getUint32(pos + 4, true);
    pos += 8;
    if (!Number.isSafeInteger(v)) fail('a length beyond 2^53');
    return v;
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('truncated text line');
    const text = latin1(bytes.subarray(pos, end));
    pos = end + 1;
    return text;
  };
  const pop = (): Item => { if (stack.length === 0) fail('stack underflow'); return stack.pop()!; };
  const top = (): Item => { if (stack.length === 0) fail('stack underflow'); return stack[stack.length - 1]; };
  const popMark = (): Item[] => {
    const items = stack;
    const previous = marks.pop();
    if (previous === undefined) fail('MARK expected');
    stack = previous!;
    return items;
  };
  const value = (item: Item): PickleValue => {
    if (item === MARK) fail('a value expected');
    if (isObject(item, 'pending-array')) return finishArray(item as PendingArray);
    return item as PickleValue;
  };
  const string = (data: Uint8Array): string => {
    try {
      return utf8.decode(data);
    } catch {
      return fail('invalid UTF-8 in a str');
    }
  };
  const finishArray = (pending: PendingArray): NumpyArray => {
    const state = pending.state;
    if (state === null) return fail('a numpy array without its state');
    // ndarray.__setstate__((version, shape, dtype, is_fortran, rawdata)); version 0 lacks the first.
    const [shapeValue, dtypeValue, fortran, raw] = state.length === 5 ? state.slice(1) : state;
    if (!Array.isArray(shapeValue) && !isObject(shapeValue, 'tuple')) fail('a numpy shape expected');
    const shape = (Array.isArray(shapeValue) ? shapeValue : (shapeValue as PickleTuple).items).map(Number);
    const dtype = dtypeValue as unknown as DtypeValue;
    if (!isObject(dtype, 'dtype')) fail('a numpy dtype expected');
    let data: Uint8Array;
    if (raw instanceof Uint8Array) data = raw;
    else if (typeof raw === 'string') data = Uint8Array.from(raw, (c) => c.charCodeAt(0));
    else return fail('numpy data bytes expected');
    return { kind: 'ndarray', dtype: `${dtype.order === '>' ? '>' : ''}${dtype.str}`, shape, fortranOrder: fortran === true || fortran === 1, data };
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME
      case 0x2e: { // STOP
        const result = value(pop());
        return result;
      }
      case 0x28: marks.push(stack); stack = []; break; // MARK
      case 0x7d: stack.push(new PickleDict()); break; // EMPTY_DICT
      case 0x64: { // DICT
        const items = popMark();
        const dict = new PickleDict();
        for (let i = 0; i + 1 < items.length; i += 2) setItem(dict, value(items[i]), value(items[i + 1]));
        stack.push(dict);
        break;
      }
      case 0x73: { // SETITEM
        const v = value(pop());
        const k = value(pop());
        const dict = top();
        if (!(dict instanceof PickleDict)) fail('SETITEM on a non-dict');
        setItem(dict as PickleDict, k, v);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        const dict = top();
        if (!(dict instanceof PickleDict)) fail('SETITEMS on a non-dict');
        for (let i = 0; i + 1 < items.length; i += 2) setItem(dict as PickleDict, value(items[i]), value(items[i + 1]));
        break;
      }
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: { const items = popMark().map(value); stack.push(items); break; } // LIST
      case 0x61: { // APPEND
        const v = value(pop());
        const list = top();
        if (!Array.isArray(list)) fail('APPEND on a non-list');
        (list as PickleValue[]).push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark().map(value);
        const list = top();
        if (!Array.isArray(list)) fail('APPENDS on a non-list');
        for (const v of items) (list as PickleValue[]).push(v);
        break;
      }
      case 0x29: stack.push({ kind: 'tuple', items: [] }); break; // EMPTY_TUPLE
      case 0x74: { const items = popMark().map(value); stack.push({ kind: 'tuple', items }); break; } // TUPLE (popMark first: it replaces `stack`)
      case 0x85: stack.push({ kind: 'tuple', items: [value(pop())] }); break; // TUPLE1
      case 0x86: { const b = value(pop()); const a = value(pop()); stack.push({ kind: 'tuple', items: [a, b] }); break; } // TUPLE2
      case 0x87: { const c = value(pop()); const b = value(pop()); const a = value(pop()); stack.push({ kind: 'tuple', items: [a, b, c] }); break; }
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: { // LONG1
        const n = u8();
        const data = take(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[i]);
        if (n > 0 && data[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x49: { // INT (text): I00 / I01 are Python 2's False / True
        const text = line();
        if (text === '00') stack.push(false);
        else if (text === '01') stack.push(true);
        else if (/^[+-]?\d+$/.test(text)) stack.push(Number(text));
        else fail(`bad INT '${text}'`);
        break;
      }
      case 0x4c: { // LONG (text)
        const text = line().replace(/L$/, '');
        if (!/^[+-]?\d+$/.test(text)) fail(`bad LONG '${text}'`);
        stack.push(Number(text));
        break;
      }
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x47: { need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; } // BINFLOAT
      case 0x54: { const n = i32(); if (n < 0) fail('negative BINSTRING length'); stack.push(take(n)); break; } // BINSTRING (Python 2 str)
      case 0x55: stack.push(take(u8())); break; // SHORT_BINSTRING
      case 0x42: stack.push(take(u32())); break; // BINBYTES
      case 0x43: stack.push(take(u8())); break; // SHORT_BINBYTES
      case 0x8e: stack.push(take(u64())); break; // BINBYTES8
      case 0x96: stack.push(take(u64())); break; // BYTEARRAY8
      case 0x58: stack.push(string(take(u32()))); break; // BINUNICODE
      case 0x8c: stack.push(string(take(u8()))); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(string(take(u64()))); break; // BINUNICODE8
      case 0x63: pushGlobal(line(), line()); break; // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const member = value(pop());
        const module = value(pop());
        if (typeof module !== 'string' || typeof member !== 'string') fail('STACK_GLOBAL expects two str');
        pushGlobal(module as string, member as string);
        break;
      }
      case 0x52: reduce(); break; // REDUCE
      case 0x62: build(); break; // BUILD
      case 0x70: memo.set(Number(line()), top()); break; // PUT
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x67: stack.push(memoGet(Number(line()))); break; // GET
      case 0x68: stack.push(memoGet(u8())); break; // BINGET
      case 0x6a: stack.push(memoGet(u32())); break; // LONG_BINGET
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      default:
        fail(`unsupported opcode 0x${op.toString(16).padStart(2, '0')} (only dicts, lists, numbers, strings and numpy arrays are read)`);
    }
  }

  function memoGet(key: number): Item {
    const item = memo.get(key);
    if (item === undefined) fail(`memo entry ${key} missing`);
    return item!;
  }

  function setItem(dict: PickleDict, key: PickleValue, v: PickleValue): void {
    if (typeof key === 'string') dict.entries.set(key, v);
    else if (key instanceof Uint8Array) dict.entries.set(latin1(key), v);
    else if (typeof key === 'number') dict.entries.set(String(key), v);
    else fail('dict keys must be str, bytes or int');
  }

  function pushGlobal(module: string, member: string): void {
    const known = KNOWN_GLOBALS[`${module} ${member}`];
    if (known === undefined) fail(`refusing the global ${module}.${member} (only numpy arrays are rebuilt)`);
    stack.push({ kind: 'global', known });
  }

  function argsOf(item: Item): PickleValue[] {
    if (!isObject(item, 'tuple')) fail('REDUCE arguments must be a tuple');
    return (item as PickleTuple).items;
  }

  function reduce(): void {
    const args = argsOf(pop());
    const fn = pop() as GlobalRef;
    if (!isObject(fn, 'global')) fail('REDUCE on something not callable');
    switch (fn.known) {
      case 'reconstruct': stack.push({ kind: 'pending-array', state: null }); break;
      case 'dtype': {
        const spec = args[0];
        const str = typeof spec === 'string' ? spec : spec instanceof Uint8Array ? latin1(spec) : fail('a dtype name expected');
        stack.push({ kind: 'dtype', str: str as string, order: '' });
        break;
      }
      case 'codecs.encode': { // Python 3 bytes pickled at protocol <= 2: _codecs.encode(str, 'latin1')
        const [text, encoding] = args;
        if (typeof text !== 'string' || (encoding !== 'latin1' && encoding !== 'latin-1')) fail('_codecs.encode(str, \'latin1\') expected');
        stack.push(Uint8Array.from(text as string, (c) => c.charCodeAt(0)));
        break;
      }
      case 'frombuffer': { // protocol 5: _frombuffer(buffer, dtype, shape, order)
        const [buffer, dtype, shape, order] = args as unknown[];
        if (!(buffer instanceof Uint8Array) || !isObject(dtype, 'dtype') || !isObject(shape, 'tuple')) fail('_frombuffer(bytes, dtype, shape, order) expected');
        const d = dtype as DtypeValue;
        stack.push({
          kind: 'ndarray', dtype: `${d.order === '>' ? '>' : ''}${d.str}`, shape: (shape as PickleTuple).items.map(Number),
          fortranOrder: order === 'F', data: buffer as Uint8Array,
        });
        break;
      }
      default:
        fail(`${fn.known} cannot be called`);
    }
  }

  function build(): void {
    const state = value(pop());
    const target = top();
    if (isObject(target, 'pending-array')) {
      if (!isObject(state, 'tuple')) fail('ndarray state must be a tuple');
      (target as PendingArray).state = (state as PickleTuple).items;
    } else if (isObject(target, 'dtype')) {
      // dtype.__setstate__((version, byteorder, ...)).
      const items = isObject(state, 'tuple') ? (state as PickleTuple).items : [];
      const order = items[1];
      (target as DtypeValue).order = typeof order === 'string' ? order : order instanceof Uint8Array ? latin1(order) : '';
    } else {
      fail(`BUILD on something that is not a numpy array or dtype (${JSON.stringify(target)?.slice(0, 80)})`);
    }
  }
}

/** Element type of a numpy dtype string: its size in bytes and whether it is signed. */
function dtypeInfo(dtype: string): { bytes: number; signed: boolean; bigEndian: boolean } | null {
  const m = /^([<>|=]?)([iu])([1248])$/.exec(dtype);
  if (m === null) return null;
  return { bytes: Number(m[3]), signed: m[2] === 'i', bigEndian: m[1] === '>' };
}

/** A numpy integer array's values as numbers (C order). */
export function numpyIntegers(array: NumpyArray, what: string): Float64Array {
  const info = dtypeInfo(array.dtype);
  if (info === null) throw new Error(`${what}: expected an integer numpy array, got dtype ${array.dtype}`);
  const count = array.shape.reduce((a, b) => a * b, 1);
  if (array.data.length !== count * info.bytes) throw new Error(`${what}: ${array.data.length} data bytes for shape [${array.shape.join(', ')}] of ${array.dtype}`);
  const view = new DataView(array.data.buffer, array.data.byteOffset, array.data.byteLength);
  const out = new Float64Array(count);
  const little = !info.bigEndian;
  for (let i = 0; i < count; i++) {
    const o = i * info.bytes;
    switch (info.bytes) {
      case 1: out[i] = info.signed ? view.getInt8(o) : view.getUint8(o); break;
      case 2: out[i] = info.signed ? view.getInt16(o, little) : view.getUint16(o, little); break;
      case 4: out[i] = info.signed ? view.getInt32(o, little) : view.getUint32(o, little); break;
      default: out[i] = Number(info.signed ? view.getBigInt64(o, little) : view.getBigUint64(o, little)); break;
    }
  }
  return out;
}
