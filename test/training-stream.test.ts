// Resuming moves a repeating stream ahead without reading the passes it skips.

import assert from 'node:assert/strict';
import test from 'node:test';
import type { Batch, BatchOptions, Dataset } from '../lib/data/types.js';
import { RepeatingStream } from '../lib/training/stream.js';

class Recording implements Dataset {
  readonly size = 10;
  readonly batchSize = 3; // 4 batches per pass, the last with 1 example
  readonly elementShape = [1];
  readonly classNames = ['a', 'b'];
  readonly served: string[] = [];
  batches(options: BatchOptions = {}): AsyncIterable<Batch> {
    const pass = options.pass ?? 0;
    const served = this.served;
    return (async function* (size: number, batch: number) {
      for (let start = 0, i = 0; start < size; start += batch, i++) {
        served.push(`${pass}:${i}`);
        const n = Math.min(batch, size - start);
        yield { x: new Float32Array(n), shape: [n, 1], y: new Float32Array(n) };
      }
    })(this.size, this.batchSize);
  }
}

test('skip(n) lands where n reads would, reading at most the rest of one pass', async () => {
  const data = new Recording();
  const skipped = new RepeatingStream(data);
  await skipped.skip(9); // 2 whole passes (8 batches) + 1 batch of pass 2
  const next = await skipped.next();
  assert.deepEqual(data.served, ['2:0', '2:1'], 'passes 0 and 1 are never read');

  const read = new Recording();
  const stream = new RepeatingStream(read);
  for (let i = 0; i < 9; i++) await stream.next();
  const expected = await stream.next();
  assert.equal(read.served[read.served.length - 1], '2:1');
  assert.deepEqual(next.shape, expected.shape);
});
