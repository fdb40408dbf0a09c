import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatBytes, formatDuration, ProgressBar } from '../lib/util/progress-bar.js';

/** A fake clock and an output sink, so that the tests do not depend on real time. */
function setup(tty: boolean) {
  let now = 1_000_000;
  const chunks: string[] = [];
  const stream = { isTTY: tty, columns: 100, write: (text: string) => chunks.push(text) > 0 };
  return {
    stream,
    clock: () => now,
    advance: (ms: number) => {
      now += ms;
    },
    text: () => chunks.join(''),
    writes: () => chunks.length,
  };
}

test('formatBytes and formatDuration use human units', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(312_400_000), '312.4 MB');
  assert.equal(formatBytes(824_887_076), '824.9 MB');
  assert.equal(formatBytes(8_100_000), '8.1 MB');
  assert.equal(formatDuration(11), '11s');
  assert.equal(formatDuration(63), '1m03s');
  assert.equal(formatDuration(3725), '1h02m');
});

test('off a TTY: plain lines at most every few seconds, a final line with the total, no control characters', () => {
  const t = setup(false);
  const total = 824_887_076;
  const bar = new ProgressBar({ label: 'archive.zip', total, unit: 'bytes', stream: t.stream, now: t.clock, plainIntervalMs: 5000 });
  // 20 s of updates every 100 ms.
  for (let i = 1; i <= 200; i++) {
    t.advance(100);
    bar.update(Math.round((total * i) / 200));
  }
  bar.finish();
  const lines = t.text().split('\n').filter(Boolean);
  assert.equal(lines.length, 5, t.text()); // at 5, 10, 15, 20 s, plus the final line
  assert.doesNotMatch(t.text(), /[\x00-\x09\x0b-\x1f\x7f]/);
  assert.match(lines[0]!, /^archive\.zip {2}25% {2}206\.2 MB \/ 824\.9 MB {2}41\.2 MB\/s {2}ETA 15s$/);
  assert.match(lines.at(-1)!, /^archive\.zip: done, 824\.9 MB in 20s \(41\.2 MB\/s\)$/);
});

test('on a TTY: one redrawn line, throttled, ended by a newline', () => {
  const t = setup(true);
  const bar = new ProgressBar({
    label: 'decode',
    total: 4003,
    unit: 'items',
    itemName: 'images',
    stream: t.stream,
    now: t.clock,
    redrawIntervalMs: 100,
  });
  t.advance(4800);
  bar.update(1200);
  for (let i = 0; i < 50; i++) bar.tick(); // same instant: throttled away
  assert.equal(t.writes(), 1);
  assert.match(t.text(), /^\rdecode \[#+-+\] {2}29% {2}1200\/4003 images {2}250\/s {2}ETA 11s\x1b\[K$/);
  t.advance(100);
  bar.tick();
  assert.equal(t.writes(), 2);
  bar.finish();
  assert.ok(t.text().endsWith('\n'));
  assert.equal(t.text().split('\n').length, 2, 'everything on one line until finish');
});

test('resumed work is not counted in the rate', () => {
  const t = setup(false);
  const bar = new ProgressBar({
    label: 'f',
    total: 1_000_000,
    unit: 'bytes',
    initial: 900_000,
    stream: t.stream,
    now: t.clock,
    plainIntervalMs: 1000,
  });
  t.advance(1000);
  bar.update(910_000);
  assert.match(t.text(), /910\.0 kB \/ 1\.0 MB {2}10\.0 kB\/s {2}ETA 9s/);
});

test('unknown total: no bar and no ETA; stop() ends the TTY line without claiming success', () => {
  const t = setup(true);
  const bar = new ProgressBar({ label: 'f', unit: 'bytes', stream: t.stream, now: t.clock });
  t.advance(1000);
  bar.update(2_000_000);
  assert.doesNotMatch(t.text().replace('\x1b[K', ''), /ETA|\[/);
  assert.match(t.text(), /2\.0 MB {2}2\.0 MB\/s/);
  bar.stop();
  assert.ok(t.text().endsWith('\n'));
  assert.doesNotMatch(t.text(), /done/);
});
