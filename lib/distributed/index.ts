export { shardBatch, shardRange } from '../data/shard.js';
export { DataParallel } from './data-parallel.js';
export {
  allreduceSum,
  barrier,
  chooseBackend,
  DEFAULT_TIMEOUT_MS,
  type DistributedBackend,
  destroyDistributed,
  distributedInfo,
  type InitDistributedOptions,
  initDistributed,
  isChief,
  type ProcessGroupInfo,
  readTorchrunEnv,
  resolveBackend,
} from './process-group.js';
