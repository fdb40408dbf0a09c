/** compare's --lr-schedule and --reduce-lr-on-plateau: parsed, checked up front, kept as given in the config. */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCompareArgs } from '../lib/cli/commands/compare.js';
import { applyResumeFlags } from '../lib/experiment/resume-flags.js';

test('--lr-schedule is kept as given; --reduce-lr-on-plateau takes settings or none', () => {
  const s = parseCompareArgs(['--lr-schedule', 'cosine:decay_steps=500,warmup_target=0.002,warmup_steps=50', '--out', 'x']).config!;
  assert.equal(s.lrSchedule, 'cosine:decay_steps=500,warmup_target=0.002,warmup_steps=50');
  assert.equal(s.reduceLrOnPlateau, undefined);
  const last = parseCompareArgs(['--out', 'x', '--reduce-lr-on-plateau']).config!;
  assert.equal(last.reduceLrOnPlateau, '', 'bare at the end: Keras defaults');
  const before = parseCompareArgs(['--reduce-lr-on-plateau', '--epochs', '3']).config!;
  assert.equal(before.reduceLrOnPlateau, '');
  assert.equal(before.epochs, 3, 'the next option is not taken as its value');
  const set = parseCompareArgs(['--reduce-lr-on-plateau', 'patience=2,factor=0.5']).config!;
  assert.equal(set.reduceLrOnPlateau, 'patience=2,factor=0.5');
});

test('bad learning-rate flags fail before any work, saying what is wrong', () => {
  assert.throws(() => parseCompareArgs(['--lr-schedule', 'step:decay_steps=5']), /unknown schedule 'step': use exponential:/);
  assert.throws(() => parseCompareArgs(['--lr-schedule', 'exponential:decay_rate=0.5']), /decay_steps=\.\.\. is required/);
  assert.throws(() => parseCompareArgs(['--reduce-lr-on-plateau', 'factor=2']), /factor must be in \[0, 1\), got 2/);
  assert.throws(() => parseCompareArgs(['--reduce-lr-on-plateau', 'patients=2']), /unknown setting 'patients'/);
  assert.throws(
    () => parseCompareArgs(['--lr-schedule', 'exponential:decay_steps=5,decay_rate=0.5', '--reduce-lr-on-plateau']),
    /use one of them/,
  );
});

test('--resume refuses a changed schedule once a model has trained', () => {
  const saved = parseCompareArgs(['--lr-schedule', 'exponential:decay_steps=5,decay_rate=0.5', '--out', 'run']).config!;
  const again = parseCompareArgs(['--lr-schedule', 'exponential:decay_steps=9,decay_rate=0.5', '--out', 'run']).config!;
  assert.throws(() => applyResumeFlags(saved, again, ['lr-schedule'], { cnn: 2 }, 'run'), /lr-schedule/);
});
