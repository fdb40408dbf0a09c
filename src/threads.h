#pragma once
namespace tl {
// Intra-op threads for the engine. OpenMP's thread count is per calling thread, so every libuv
// worker applies the process-wide setting before it computes.
void setThreads(int threads);
int getThreads();
void configureWorkerThreads();
}  // namespace tl
