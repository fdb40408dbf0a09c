/**
 * Thin layer over h5wasm: loading the WebAssembly module once, opening files with clear errors,
 * and reading attributes and float datasets the way Keras files store them.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Dataset, Group, File as H5File } from 'h5wasm/node';
import h5wasm from 'h5wasm/node';
import { shapeSize } from '../keras-format/shape.js';
import { floatsFromBytes } from './float-bytes.js';

export type { Dataset, Group, H5File };

interface RawModule {
  activate_throwing_error_handler(): number;
  get_dataset_data(fileId: bigint, path: string, count: null, offset: null, strides: null, ptr: bigint): number;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  HEAPU8: Uint8Array;
}

let modulePromise: Promise<RawModule> | undefined;

/**
 * The h5wasm module, ready. HDF5's default error handler only prints and carries on (a missing
 * group would then read as garbage), so the throwing handler is switched on once for the process.
 */
export function h5Module(): Promise<RawModule> {
  modulePromise ??= h5wasm.ready.then((module) => {
    const raw = module as unknown as RawModule;
    raw.activate_throwing_error_handler();
    return raw;
  });
  return modulePromise;
}

/** First line of an HDF5 error stack that says what failed (the full stack is 20 lines). */
function hdf5Reason(error: unknown): string {
  const lines = String(error).split('\n');
  const line = lines.find((l) => /#\d+:/.test(l)) ?? lines[0] ?? '';
  return line.replace(/^.*? in /, '').trim();
}

const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Opens an HDF5 file for reading; errors name the file and say whether it is missing or not HDF5. */
export async function openH5(filePath: string): Promise<H5File> {
  const absolute = path.resolve(filePath);
  const handle = await fs.open(absolute, 'r').catch((error: NodeJS.ErrnoException) => {
    throw new Error(`${filePath}: cannot open weights file (${error.code ?? error.message})`);
  });
  try {
    const head = Buffer.alloc(8);
    await handle.read(head, 0, 8, 0);
    // The signature may also sit after a user block (512, 1024, ... bytes); HDF5 finds it then.
    if (!head.equals(HDF5_SIGNATURE) && (await handle.stat()).size < 512) {
      throw new Error(`${filePath}: not an HDF5 file (no HDF5 signature)`);
    }
  } finally {
    await handle.close();
  }
  await h5Module();
  try {
    return new h5wasm.File(absolute, 'r');
  } catch (error) {
    throw new Error(`${filePath}: not a readable HDF5 file (${hdf5Reason(error)})`);
  }
}

export function isGroup(entity: unknown): entity is Group {
  return entity instanceof h5wasm.Group;
}

export function isDataset(entity: unknown): entity is Dataset {
  return entity instanceof h5wasm.Dataset;
}

/** The child group `name` of `group`, or undefined when there is none (or it is not a group). */
export function childGroup(group: Group, name: string): Group | undefined {
  if (!group.keys().includes(name)) return undefined;
  const entity = group.get(name);
  return isGroup(entity) ? entity : undefined;
}

/**
 * A string-list attribute. Keras writes fixed-length byte strings (numpy `S` arrays), other
 * writers variable-length strings; both come back from h5wasm as strings. An empty list is
 * written by h5py as an empty float64 array, so any empty array reads as `[]`.
 */
export function readStringListAttribute(object: Group, name: string, where: string): string[] {
  const value = object.get_attribute(name, false) as unknown;
  if (typeof value === 'string') return [value];
  if (value instanceof Uint8Array && value.length > 0) return [new TextDecoder().decode(value).replace(/\0+$/, '')];
  if (ArrayBuffer.isView(value) && (value as unknown as ArrayLike<unknown>).length === 0) return [];
  if (Array.isArray(value)) {
    return value.map((item, i) => {
      if (typeof item === 'string') return item;
      if (item instanceof Uint8Array) return new TextDecoder().decode(item).replace(/\0+$/, '');
      throw new Error(`${where}: attribute "${name}" item ${i} is not a string`);
    });
  }
  throw new Error(`${where}: attribute "${name}" is not a list of strings`);
}

/**
 * Reads a Keras list attribute that may be split into `name0`, `name1`, ... because HDF5 limits
 * an object header to 64 KiB (Keras's `save_attributes_to_hdf5_group`). Returns undefined when
 * neither form is present.
 */
export function readChunkedStringList(object: Group, name: string, where: string): string[] | undefined {
  const attributeNames = Object.keys(object.attrs);
  if (attributeNames.includes(name)) return readStringListAttribute(object, name, where);
  if (!attributeNames.includes(`${name}0`)) return undefined;
  const out: string[] = [];
  for (let chunk = 0; attributeNames.includes(`${name}${chunk}`); chunk++) {
    out.push(...readStringListAttribute(object, `${name}${chunk}`, where));
  }
  return out;
}

export interface FloatDataset {
  shape: number[];
  data: Float32Array;
}

/**
 * A float dataset as float32. Reads the raw bytes (h5wasm cannot decode float16 and does not
 * byte-swap big-endian data) and converts them here. Other types are an error naming `where`.
 */
export async function readFloatDataset(dataset: Dataset, where: string): Promise<FloatDataset> {
  const module = await h5Module();
  const metadata = dataset.metadata;
  const shape = metadata.shape ?? [];
  const FLOAT_CLASS = 1; // H5T_FLOAT
  if (metadata.type !== FLOAT_CLASS || (metadata.size !== 2 && metadata.size !== 4 && metadata.size !== 8)) {
    throw new Error(`${where}: unsupported dtype ${String(dataset.dtype)} (weights must be float32; float16/float64 are converted)`);
  }
  const count = shapeSize(shape);
  const byteLength = count * metadata.size;
  if (byteLength === 0) return { shape, data: new Float32Array(0) };
  const ptr = module._malloc(byteLength);
  if (!ptr) throw new Error(`${where}: out of WebAssembly memory reading ${byteLength} bytes`);
  try {
    module.get_dataset_data(dataset.file_id, dataset.path, null, null, null, BigInt(ptr));
    // Copy out of the wasm heap: it may grow (and move) on the next allocation.
    const bytes = module.HEAPU8.slice(ptr, ptr + byteLength);
    return { shape, data: floatsFromBytes(bytes, metadata.size, metadata.littleEndian, count) };
  } finally {
    module._free(ptr);
  }
}
