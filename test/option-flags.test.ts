import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withOptionFlags } from '../lib/cli/option-flags.js';
import type { DatasetInfo } from '../lib/data/open-splits.js';
import { unusableError } from '../lib/data/usable.js';
import { OptionError } from '../lib/util/option-error.js';

const info = {
  name: 'folder',
  source: '/photos',
  examples: 3,
  splitSpecs: ['train[:80%]', 'train[-20%:]'],
  splits: { train: 3, validation: 0 },
  classNames: ['a', 'b'],
  classCounts: { train: [2, 1], validation: [0, 0] },
} as unknown as DatasetInfo;

test('an empty split names the library option; the CLI renders it as its flag', () => {
  const error = unusableError(info);
  assert.ok(error instanceof OptionError);
  assert.equal(error.option, 'splits');
  assert.equal(error.message, 'the split train[-20%:] of 3 example(s) is empty; widen `splits` or use more of the data.');
  const wrapped = new Error(`data: ${error.message}`, { cause: error });
  assert.equal(withOptionFlags(wrapped), 'data: the split train[-20%:] of 3 example(s) is empty; widen --splits or use more of the data.');
  assert.equal(withOptionFlags(new Error('plain')), 'plain');
});

test('a usable dataset has no error; one class alone is refused without naming an option', () => {
  assert.equal(unusableError({ ...info, splits: { train: 2, validation: 1 } }), undefined);
  const oneClass = unusableError({ ...info, splits: { train: 2, validation: 1 }, classCounts: { train: [2, 0], validation: [1, 0] } });
  assert.ok(oneClass && !(oneClass instanceof OptionError));
  assert.match(oneClass.message, /needs at least two/);
});
