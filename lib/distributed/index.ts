export { shardBatch, shardRange } from '../data/shard.js';
export { DataParallel } from './data-parallel.js';
export {
  allreduceSum,
  barrier,
  DEFAULT_TIMEOUT_MS,
  destroyDistributed,
  distributedInfo,
  type InitDistributedOptions,
  initDistributed,
  isChief,
  type ProcessGroupInfo,
  readTorchrunEnv,
} from './process-group.js';
