/** Datasets: cats_vs_dogs as tfds builds it, any image folder, decoding and caching. */
export type { Batch, Dataset } from './types.js';
export { openCatsVsDogs, inspectCatsVsDogs, openCatsVsDogsSource, CATS_VS_DOGS_ARCHIVE_NAME } from './cats-vs-dogs.js';
export type { CatsVsDogsOptions, CatsVsDogsInfo, CatsVsDogsSourceOptions } from './cats-vs-dogs.js';
export { scanCatsVsDogs, CATS_VS_DOGS_NAME_RE } from './cats-vs-dogs-scan.js';
export { openImageFolder, inspectImageFolder, scanImageFolder, IMAGE_EXTENSIONS } from './image-folder.js';
export type { ImageFolderOptions } from './image-folder.js';
export { DEFAULT_SPLITS } from './open-splits.js';
export type { DatasetInfo, OpenedDatasets, OpenCommonOptions } from './open-splits.js';
export { DecodedDataset } from './decoded-dataset.js';
export { decodeImage, decodeImageFile, thumbnailJpeg, DecodeError, LIMIT_INPUT_PIXELS } from './decode.js';
export { describeSourceRef } from './source.js';
export type { SourceRef } from './source.js';
export { parseSplit, resolveSplit, pythonRound } from './split.js';
export { tfdsHash, sortInTfdsOrder } from './tfds-order.js';
export { resizeBilinearTf } from './resize.js';
