import type { ModelRunSummary } from './types.js';

/**
 * File-name stems for per-model outputs (`<stem>_training.svg`). Model names come from user
 * configuration, so anything outside [A-Za-z0-9_-] is replaced, and duplicates get a numeric
 * suffix so that two models never overwrite each other's files.
 */
export function modelFileStems(models: readonly Pick<ModelRunSummary, 'name'>[]): string[] {
  const used = new Set<string>();
  return models.map((model, index) => {
    const base =
      model.name
        .replace(/[^A-Za-z0-9_-]+/g, '_')
        .replace(/^_+|_+$/g, '')
        .slice(0, 64) || `model${index + 1}`;
    let stem = base;
    for (let n = 2; used.has(stem.toLowerCase()); n++) stem = `${base}_${n}`;
    // Case-insensitive, because two stems differing only in case collide on macOS and Windows.
    used.add(stem.toLowerCase());
    return stem;
  });
}

/** Chart name (and file stem) of a model's training-vs-validation chart. */
export function trainingChartName(stem: string): string {
  return `${stem}_training`;
}

/** Chart name (and file stem) of a model's ROC and precision-recall chart (binary tasks). */
export function curvesChartName(stem: string): string {
  return `${stem}_roc_pr`;
}

/**
 * Display labels for chart legends, which must be unique because the legend maps label → colour:
 * a repeated label gets the model name appended.
 */
export function seriesLabels(models: readonly Pick<ModelRunSummary, 'name' | 'label'>[]): string[] {
  const counts = new Map<string, number>();
  for (const m of models) counts.set(m.label, (counts.get(m.label) ?? 0) + 1);
  const used = new Set<string>();
  return models.map((m, index) => {
    let label = (counts.get(m.label) ?? 0) > 1 ? `${m.label} (${m.name})` : m.label;
    if (label.trim() === '') label = m.name || `model ${index + 1}`;
    for (let n = 2; used.has(label); n++) label = `${m.label} #${n}`;
    used.add(label);
    return label;
  });
}
