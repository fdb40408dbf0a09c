import { OptionError } from '../util/option-error.js';
import type { DatasetInfo } from './open-splits.js';

/**
 * Why a listed dataset cannot train a classifier (undefined when it can): no examples, an empty
 * split (an OptionError naming `splits`), or fewer than two classes with training examples.
 */
export function unusableError(info: DatasetInfo): Error | undefined {
  if (info.examples === 0) {
    const layout =
      info.name === 'cats_vs_dogs'
        ? 'cats_vs_dogs needs PetImages/Cat/<n>.jpg and PetImages/Dog/<n>.jpg with the JFIF marker in their first bytes'
        : 'an image folder needs <class>/<image> files';
    return new Error(
      `${info.source} holds no usable examples (${info.files} file(s) seen, ${info.skippedByName} not named as expected, ` +
        `${info.skippedByJfif} without the JFIF marker): ${layout}.`,
    );
  }
  for (const [split, size] of [
    [info.splitSpecs[0], info.splits.train],
    [info.splitSpecs[1], info.splits.validation],
  ] as const) {
    if (size === 0) {
      return new OptionError(
        'splits',
        (option) => `the split ${split} of ${info.examples} example(s) is empty; widen ${option} or use more of the data.`,
      );
    }
  }
  const present = info.classNames.filter((_, i) => (info.classCounts.train[i] ?? 0) > 0);
  if (present.length < 2) {
    const counts = info.classNames.map((c, i) => `${c} ${info.classCounts.train[i] ?? 0}`).join(', ');
    return new Error(
      `the training split ${info.splitSpecs[0]} has examples of ${present.length} class(es) (${counts}); a classifier needs at least two. ` +
        `Add images of the missing class(es) to ${info.source}.`,
    );
  }
  return undefined;
}
