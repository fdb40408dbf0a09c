import type { RunSummary } from './types.js';

/**
 * Minimal structural check of a summary.json before rendering: the fields the renderers
 * dereference must be there with the right kinds. JSON has no NaN, so `JSON.stringify` wrote NaN
 * and Infinity as null: numeric fields accept null and come back as NaN.
 */
export class InvalidSummaryError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`${source} is not a valid run summary:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'InvalidSummaryError';
  }
}

type Obj = Record<string, unknown>;

const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNumberish = (v: unknown) => typeof v === 'number' || v === null;

export function parseRunSummary(value: unknown, source = 'summary'): RunSummary {
  const problems: string[] = [];
  const need = (ok: boolean, what: string) => {
    if (!ok) problems.push(what);
    return ok;
  };
  if (!need(isObject(value), 'the top level must be a JSON object')) throw new InvalidSummaryError(source, problems);
  const s = value as Obj;
  need(typeof s.title === 'string', 'title must be a string');
  need(typeof s.createdAt === 'string', 'createdAt must be a string');
  need(isObject(s.config), 'config must be an object');
  need(isObject(s.environment), 'environment must be an object');
  if (need(isObject(s.dataset), 'dataset must be an object')) {
    const d = s.dataset as Obj;
    need(isObject(d.splits), 'dataset.splits must be an object');
    need(Array.isArray(d.classNames), 'dataset.classNames must be an array');
    need(Array.isArray(d.decodeFailures), 'dataset.decodeFailures must be an array');
  }
  if (need(Array.isArray(s.models), 'models must be an array')) {
    (s.models as unknown[]).forEach((m, i) => {
      const at = `models[${i}]`;
      if (!isObject(m)) {
        problems.push(`${at} must be an object`);
        return;
      }
      need(typeof m.name === 'string', `${at}.name must be a string`);
      need(typeof m.label === 'string', `${at}.label must be a string`);
      need(typeof m.summaryText === 'string', `${at}.summaryText must be a string`);
      need(m.error === undefined || typeof m.error === 'string', `${at}.error must be a string when present`);
      if (need(isObject(m.history), `${at}.history must be an object`)) {
        for (const key of ['loss', 'accuracy', 'val_loss', 'val_accuracy']) {
          const series = (m.history as Obj)[key];
          need(Array.isArray(series) && series.every(isNumberish), `${at}.history.${key} must be an array of numbers`);
        }
      }
      for (const key of ['best', 'final', 'params']) need(isObject(m[key]), `${at}.${key} must be an object`);
      need(Array.isArray(m.epochSeconds) && m.epochSeconds.every(isNumberish), `${at}.epochSeconds must be an array of numbers`);
      for (const key of ['mostConfidentlyWrong', 'mostConfidentlyCorrect'])
        need(
          m[key] === undefined || (Array.isArray(m[key]) && m[key].every(isObject)),
          `${at}.${key} must be an array of objects when present`,
        );
      if (m.curves !== undefined) checkCurves(m.curves, `${at}.curves`, need);
    });
  }
  if (problems.length > 0) throw new InvalidSummaryError(source, problems);
  const models = (s.models as Obj[]).map((m) => {
    const restored: Obj = { ...m };
    for (const key of ['history', 'best', 'final', 'params', 'epochSeconds']) restored[key] = nullsToNaN(m[key]);
    for (const key of ['bestAccuracy', 'checkpoint', 'timings']) if (m[key] !== undefined) restored[key] = nullsToNaN(m[key]);
    if (m.msPerStep === null) restored.msPerStep = NaN;
    return restored;
  });
  return { ...s, models } as unknown as RunSummary;
}

/** The binary curves the report charts: both curves as arrays of numeric points, both areas numbers. */
function checkCurves(curves: unknown, at: string, need: (ok: boolean, what: string) => boolean): void {
  if (!need(isObject(curves), `${at} must be an object when present`)) return;
  const c = curves as Obj;
  const points = (v: unknown, keys: string[]) =>
    Array.isArray(v) && v.every((p) => isObject(p) && keys.every((k) => typeof p[k] === 'number'));
  need(points(c.roc, ['fpr', 'tpr']), `${at}.roc must be an array of {fpr, tpr} numbers`);
  need(points(c.pr, ['recall', 'precision']), `${at}.pr must be an array of {recall, precision} numbers`);
  for (const key of ['rocAuc', 'averagePrecision', 'positives', 'negatives'])
    need(typeof c[key] === 'number', `${at}.${key} must be a number`);
}

/** Restores the NaN that JSON turned into null, in the purely numeric parts of a model's record. */
function nullsToNaN(value: unknown): unknown {
  if (value === null) return NaN;
  if (Array.isArray(value)) return value.map(nullsToNaN);
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, nullsToNaN(v)]));
  return value;
}
