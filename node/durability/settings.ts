/**
 * The durability settings (from the repo config) and their defaults.
 *
 * @module
 */
import { parsePolicy } from '../../protocol/durability.js'

/** Settings (from the repo config). */
export interface DurabilityInit {
  /** This node's zone, if any. */
  zone?: string
  /** Policy of files of `largeFrom` bytes and more. @default 'ec:4+2' */
  largePolicy?: string
  /** Policy of smaller files. @default 'replicas:3' */
  smallPolicy?: string
  /** @default 1 MiB */
  largeFrom?: number
  /** A holder away this long has its shards rebuilt elsewhere (ms). @default 10 min */
  graceMs?: number
  /** Period of the repair check (ms); 0 = only on demand. @default 60 s */
  checkIntervalMs?: number
  /** Repair traffic budget (bytes/s). @default 32 MiB/s */
  repairBytesPerSecond?: number
  /** Period of the scrub (ms); 0 = only on demand. @default 7 days */
  scrubIntervalMs?: number
  /** Scrub read budget (bytes/s). @default 64 MiB/s */
  scrubBytesPerSecond?: number
  /** Most bytes of shards held for others (config `storage.maxForOthers`). @default half the free space of `storagePath`'s disk plus what is held */
  maxForOthers?: number
  /** A folder on the repo's disk, for the default quota; absent with no `maxForOthers`: no quota. */
  storagePath?: string
  /** How long a peer that refused a hold over its quota is left out of placement and repair (ms). @default 10 min */
  fullPeerMs?: number
}

/** {@link DurabilityInit} with every default filled in. */
export type DurabilitySettings = Required<Omit<DurabilityInit, 'zone' | 'maxForOthers' | 'storagePath'>> & Pick<DurabilityInit, 'zone' | 'maxForOthers' | 'storagePath'>

/**
 * Fill in the defaults.
 *
 * @throws {InvalidPolicyError} when a policy does not parse
 */
export function resolveSettings (init: DurabilityInit = {}): DurabilitySettings {
  const settings: DurabilitySettings = {
    zone: init.zone,
    largePolicy: init.largePolicy ?? 'ec:4+2',
    smallPolicy: init.smallPolicy ?? 'replicas:3',
    largeFrom: init.largeFrom ?? 1024 * 1024,
    graceMs: init.graceMs ?? 10 * 60_000,
    checkIntervalMs: init.checkIntervalMs ?? 60_000,
    repairBytesPerSecond: init.repairBytesPerSecond ?? 32 * 1024 * 1024,
    scrubIntervalMs: init.scrubIntervalMs ?? 7 * 24 * 3600_000,
    scrubBytesPerSecond: init.scrubBytesPerSecond ?? 64 * 1024 * 1024,
    maxForOthers: init.maxForOthers,
    storagePath: init.storagePath,
    fullPeerMs: init.fullPeerMs ?? 10 * 60_000
  }
  parsePolicy(settings.largePolicy)
  parsePolicy(settings.smallPolicy)
  return settings
}
