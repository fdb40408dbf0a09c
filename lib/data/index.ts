/** Datasets: cats_vs_dogs as tfds builds it, any image folder, decoding and caching. */

export type { CatsVsDogsInfo, CatsVsDogsOptions, CatsVsDogsSourceOptions } from './cats-vs-dogs.js';
export { CATS_VS_DOGS_ARCHIVE_NAME, inspectCatsVsDogs, openCatsVsDogs, openCatsVsDogsSource } from './cats-vs-dogs.js';
export { CATS_VS_DOGS_ARCHIVE } from './cats-vs-dogs-archive.js';
export { CATS_VS_DOGS_NAME_RE, scanCatsVsDogs } from './cats-vs-dogs-scan.js';
export { DecodeError, decodeImage, decodeImageFile, LIMIT_INPUT_PIXELS, thumbnailJpeg } from './decode.js';
export { DecodedDataset } from './decoded-dataset.js';
export type { ImageFolderOptions } from './image-folder.js';
export { IMAGE_EXTENSIONS, inspectImageFolder, openImageFolder, scanImageFolder } from './image-folder.js';
export type { DatasetInfo, OpenCommonOptions, OpenedDatasets } from './open-splits.js';
export { DEFAULT_SPLITS } from './open-splits.js';
export { resizeBilinearTf } from './resize.js';
export { shardedBatches } from './shard.js';
export type { SourceRef } from './source.js';
export { describeSourceRef } from './source.js';
export { parseSplit, pythonRound, resolveSplit } from './split.js';
export { sortInTfdsOrder, tfdsHash } from './tfds-order.js';
export type { Batch, BatchOptions, Dataset, Shard } from './types.js';
