/**
 * FUSE mount of the shared namespace (`shoal mount DIR`). See docs/fuse.md.
 *
 * - `service.ts`: mounts of a node, their record, stale-mount restore
 * - `filesystem.ts`: the namespace as a file system, writes staged on top
 * - `ops.ts`: that file system as the binding's operations table
 * - `adapter.ts`: the binding (ours over libfuse3, `fuse3.ts`; else fuse-native over libfuse2) and mount options
 * - `staging.ts`, `commits.ts`, `reader.ts`, `attrs.ts`, `locks.ts`: the parts
 * - `mounts.ts`: mountpoint checks, `<repo>/mounts.json`, freeing stale mounts
 * - `errno.ts`, `errors.ts`: failures as errno and as error classes
 *
 * @module
 */
export { FuseService, createFuseService, type FuseComponents, type MountInfo } from './service.js'
export { registerFuseMetrics } from './metrics.js'
export type { FuseReadCounts } from './fuse3.js'
export { ShoalFilesystem, type FilesystemComponents, type FilesystemOptions, type Attr } from './filesystem.js'
export { checkFuse, chooseFuseBinding, mountFuse, EXTRA_MOUNT_OPTIONS, FUSE_BINDING_ENV, type FuseBindingName, type FuseBindingChoice, type FuseOps, type FuseMountOptions, type MountedFuse } from './adapter.js'
export { createOps, statOf } from './ops.js'
export { StagingArea, StagedFile } from './staging.js'
export { HandleReader, type HandleReaderOptions } from './reader.js'
export { ReadBudget, DEFAULT_READ_BUDGET_BYTES, type Shedder } from './read-budget.js'
export { CommitQueue, type CommitBatch, type CommitQueueOptions } from './commits.js'
export { ContentCache, CachedContent } from './cache.js'
export { cleanStaleMount, checkMountpoint, isStaleMount, mountTable, readMountRecords } from './mounts.js'
export { ERRNO, errnoOf } from './errno.js'
export { FuseUnavailableError, MountpointBusyError, MountpointInsideMountError, NotMountedError, UncommittedFilesError, ErrnoError } from './errors.js'
