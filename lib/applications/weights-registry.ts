import type { ArtifactTable } from '../net/artifacts.js';
import { VGG16_WEIGHTS_ARTIFACT } from './vgg16.js';

/** The pretrained weight files of the applications, by id (aliases in each artifact); `weights fetch` offers these. */
export const APPLICATION_WEIGHTS: ArtifactTable = { [VGG16_WEIGHTS_ARTIFACT.id]: VGG16_WEIGHTS_ARTIFACT };
