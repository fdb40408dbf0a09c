import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (tests run from dist/test/..., compiled next to the sources). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** The team's read-only material, beside the repository (never copied into it). */
export const sharedDir = process.env.TRANSFERLAB_SHARED_DIR ?? path.resolve(repoRoot, '../shared');
export const petImagesDir = path.join(sharedDir, 'data/PetImages');
export const mobilenetModelJson = path.join(sharedDir, 'weights/mobilenet_v1_0.75_224/model.json');
