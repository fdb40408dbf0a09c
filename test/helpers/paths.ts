import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (tests run from dist/test/..., compiled next to the sources). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * Optional folder of large real assets (the cats_vs_dogs photos, a real MobileNet). Tests that need them
 * skip without it; everything else generates its own fixtures.
 */
export const assetsDir: string | undefined = process.env.TRANSFERLAB_TEST_ASSETS
  ? path.resolve(process.env.TRANSFERLAB_TEST_ASSETS)
  : undefined;

const PET_IMAGES = 'data/PetImages';
const MOBILENET = 'weights/mobilenet_v1_0.75_224/model.json';

function asset(relative: string): string | undefined {
  if (assetsDir === undefined) return undefined;
  const full = path.join(assetsDir, relative);
  return existsSync(full) ? full : undefined;
}

/** The real cats_vs_dogs PetImages folder, or undefined when TRANSFERLAB_TEST_ASSETS does not provide it. */
export const petImagesDir: string | undefined = asset(PET_IMAGES);
/** The real MobileNet v1 0.75/224 TF.js model.json, or undefined when TRANSFERLAB_TEST_ASSETS does not provide it. */
export const mobilenetModelJson: string | undefined = asset(MOBILENET);

function skipReason(what: string, relative: string): string {
  return `needs ${what}: set TRANSFERLAB_TEST_ASSETS to a folder holding ${relative}`;
}

/** node:test `skip` option for tests that need the real photos: false when present, else the reason. */
export const needsPetImages: false | string = petImagesDir !== undefined ? false : skipReason('the real cats_vs_dogs photos', PET_IMAGES);
/** node:test `skip` option for tests that need the real MobileNet: false when present, else the reason. */
export const needsMobilenet: false | string =
  mobilenetModelJson !== undefined ? false : skipReason('the real MobileNet v1 0.75/224 in TF.js format', MOBILENET);
