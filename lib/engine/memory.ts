import { native } from './native.js';

/**
 * Hands the engine's cached buffers back to the system, as `torch.cuda.empty_cache()` does for
 * GPUs. Training keeps freed buffers for the next step of the same shapes; when the next workload
 * is another model (or the head after the frozen base's feature pass), those buffers only add to
 * the process's memory, so call this between workloads.
 */
export function emptyCache(): void {
  native().emptyCache();
}
