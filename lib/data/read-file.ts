import { promises as fs } from 'node:fs';

/** Why a file could not be read, in words; node's own EISDIR message does not name the file. */
function describeReadError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file (ENOENT); check the path';
  if (code === 'EISDIR') return 'it is a folder, not a file (EISDIR)';
  if (code === 'EACCES' || code === 'EPERM') return `permission denied (${code}); check the file's permissions`;
  return (error as Error).message;
}

/** Whole file; any failure is an error naming the file. */
export async function readImageBytes(file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (error) {
    throw new Error(`Cannot read image ${file}: ${describeReadError(error)}`);
  }
}

/** Up to `n` first bytes (fewer if the file is shorter); any failure is an error naming the file. */
export async function readImageHead(file: string, n: number): Promise<Buffer> {
  try {
    const handle = await fs.open(file, 'r');
    try {
      const buf = Buffer.alloc(n);
      const { bytesRead } = await handle.read(buf, 0, n, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw new Error(`Cannot read image ${file}: ${describeReadError(error)}`);
  }
}
