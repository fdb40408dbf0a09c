/**
 * The layering rules of lib/, checked on the import graph of its sources: Keras format types sit
 * below io and models, models never download or read files, and no module imports itself back.
 */

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from './helpers/paths.js';

const LIB = path.join(repoRoot, 'lib');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

/** Relative specifiers of a module's static imports and re-exports (type-only ones too), and of `import('...')` types. */
export function importSpecifiers(source: string): string[] {
  const found: string[] = [];
  for (const m of source.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s*'([^']+)'/gms)) found.push(m[1]!);
  for (const m of source.matchAll(/^\s*import\s*'([^']+)'/gm)) found.push(m[1]!);
  for (const m of source.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) found.push(m[1]!);
  return found.filter((s) => s.startsWith('.'));
}

/** Module id (path under lib/ without extension) → the lib modules it imports. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(LIB)) {
    const id = path.relative(LIB, file).replace(/\.ts$/, '').split(path.sep).join('/');
    const targets = importSpecifiers(readFileSync(file, 'utf8')).map((spec) => {
      const resolved = path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts'));
      return path.relative(LIB, resolved).replace(/\.ts$/, '').split(path.sep).join('/');
    });
    graph.set(id, targets);
  }
  return graph;
}

const graph = importGraph();
const folder = (id: string) => id.split('/')[0];

/** Every import edge from a module in folder `from` to one in folder `to`. */
function edges(from: string, to: string): string[] {
  return [...graph].flatMap(([id, targets]) =>
    folder(id) === from ? targets.filter((t) => folder(t) === to).map((t) => `${id} -> ${t}`) : [],
  );
}

/** Cycles found by depth-first search, each as the path that closes it. */
function cycles(): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const found: string[][] = [];
  const visit = (id: string, trail: string[]) => {
    state.set(id, 'open');
    for (const next of graph.get(id) ?? []) {
      if (state.get(next) === 'open')
        found.push([...trail.slice(trail.indexOf(next)), id, next].filter((n, i, all) => i === 0 || n !== all[i - 1]));
      else if (!state.has(next)) visit(next, [...trail, id]);
    }
    state.set(id, 'done');
  };
  for (const id of graph.keys()) if (!state.has(id)) visit(id, []);
  return found;
}

test('the import parser finds static, type-only, re-export and import() specifiers', () => {
  const source = [
    "import { a } from './a.js';",
    "import type {\n  B,\n  C,\n} from '../models/b.js';",
    "export { d } from './d.js';",
    "import 'node:fs';",
    "type E = import('./e.js').E;",
    "const s = 'from ./not-an-import.js';",
  ].join('\n');
  assert.deepEqual(importSpecifiers(source).sort(), ['../models/b.js', './a.js', './d.js', './e.js']);
});

test('the graph covers lib/ and resolves imports to existing modules', () => {
  assert.ok(graph.has('index') && graph.has('models/sequential') && graph.has('training/fit'));
  const dangling = [...graph].flatMap(([id, targets]) => targets.filter((t) => !graph.has(t)).map((t) => `${id} -> ${t}`));
  assert.deepEqual(dangling, [], 'every relative import resolves to a module under lib/');
});

test('io never imports models', () => {
  assert.deepEqual(edges('io', 'models'), []);
});

test('models never import net or io (files are read and downloaded one level up)', () => {
  assert.deepEqual([...edges('models', 'net'), ...edges('models', 'io')], []);
});

test('net never imports applications (artifact descriptions come in as data)', () => {
  assert.deepEqual(edges('net', 'applications'), []);
});

test('keras-format depends on nothing else in lib', () => {
  assert.ok(
    [...graph.keys()].some((id) => folder(id) === 'keras-format'),
    'lib/keras-format exists',
  );
  const outside = [...graph].flatMap(([id, targets]) =>
    folder(id) === 'keras-format' ? targets.filter((t) => folder(t) !== 'keras-format') : [],
  );
  assert.deepEqual(outside, []);
});

test('data does not build on reports types', () => {
  assert.deepEqual(edges('data', 'reports'), []);
});

test('lib has no import cycles', () => {
  assert.deepEqual(
    cycles().map((c) => c.join(' -> ')),
    [],
  );
});
