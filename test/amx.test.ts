/**
 * src/amx.h: whether the mixed_bfloat16 kernels may use AMX tiles is read from the CPU (cpuid) and
 * Linux's permission; checked here against /proc/cpuinfo's flags, read independently.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../lib/engine/native.js';
import { cpuFlags, withSetting } from './helpers/engine-settings.js';

test('info().amx agrees with the CPU flags, and says why not when false', (t) => {
  const flags = cpuFlags();
  if (!flags) return t.skip('no /proc/cpuinfo flags to compare with (not Linux)');
  const info = native().info();
  const hasTiles = flags.has('amx_tile') && flags.has('amx_bf16');
  if (!hasTiles) {
    assert.equal(info.amx, false);
    assert.match(info.amxReason, /no AMX/);
  } else {
    // the CPU has tiles: only an old kernel refusing the tile state can say no, and must say so
    assert.ok(info.amx || /Linux did not grant/.test(info.amxReason), `amx false with reason '${info.amxReason}'`);
    if (info.amx) assert.equal(info.amxReason, '');
  }
});

test('setAmx returns the previous setting and refuses anything but a boolean', () => {
  const engine = native();
  const before = engine.setAmx(false);
  assert.equal(engine.setAmx(before), false);
  assert.equal(engine.setAmx(before), before);
  assert.throws(() => engine.setAmx('no' as unknown as boolean), /setAmx: pass true .* or false/);
});

test('amxPeakFlops (bench): 0 with the tiles switched off or absent, a finite rate with them', async () => {
  const engine = native();
  assert.equal(await withSetting(engine.setAmx, false, async () => engine.amxPeakFlops()), 0);
  const peak = engine.amxPeakFlops();
  if (engine.info().amx) assert.ok(Number.isFinite(peak) && peak > 0, `peak ${peak}`);
  else assert.equal(peak, 0);
});
