export { BlobStore, CHECKPOINT_BYTES, type EnsureOptions, type StoreStats } from './blob-store.js';
export { defaultCacheDir } from './location.js';
export { HEARTBEAT_MS, isStale, lockOwner, pidAlive, STALE_MS, tryLock, type HeldLock, type LockOwner } from './lock.js';
