/**
 * `shoal config get|set`: read and change one setting of a repo's
 * config.json by its dotted key (`api`, `namespace.syncInterval`,
 * `durability.zone`…), so that nobody has to edit the file by hand. A value
 * is taken as JSON when it parses as JSON (numbers, booleans, lists, quoted
 * strings), else as a plain string; the whole config is validated before it
 * is written (atomically), so a bad value changes nothing.
 *
 * @module
 */
import { multiaddr } from '@multiformats/multiaddr'
import { InvalidArgumentError } from '../errors.js'
import { parseApiAddress } from '../../protocol/api-address.js'
import { parseGatewaySetting } from '../gateway/address.js'
import { parseChunker } from '../content/chunker/index.js'
import { parsePolicy } from '../../protocol/durability.js'
import { RepoConfigSchema, type RepoConfig } from './config.js'
import { checkListenAddress } from './listen-addresses.js'

/** Checks beyond the schema, as `shoal init` makes them for the same settings. */
const CHECKS: Record<string, (value: any) => void> = {
  api: value => { parseApiAddress(String(value)) },
  gateway: value => { parseGatewaySetting(String(value)) },
  chunker: value => { parseChunker(String(value)) },
  listen: value => { for (const addr of Array.isArray(value) ? value : []) checkListenAddress(String(addr)) },
  announce: checkMultiaddrs,
  bootstrap: checkMultiaddrs,
  'durability.largePolicy': value => { parsePolicy(String(value)) },
  'durability.smallPolicy': value => { parsePolicy(String(value)) }
}

/**
 * Settings `config` never changes: the format's version, and whether the
 * repo is a private swarm (it follows `swarm.key`, which `init` writes; see
 * `shoal swarm`/`init --join`).
 */
const FIXED = new Set(['version', 'privateSwarm'])

function checkMultiaddrs (value: unknown): void {
  for (const addr of Array.isArray(value) ? value : []) {
    try { multiaddr(String(addr)) } catch (err: any) { throw new InvalidArgumentError(`invalid multiaddr ${JSON.stringify(addr)}: ${String(err.message)}`) }
  }
}

/** The settings a key may name: every leaf and section of the schema, dotted. */
export function settingKeys (): string[] {
  const keys: string[] = []
  const walk = (shape: Record<string, any>, prefix: string): void => {
    for (const [name, schema] of Object.entries(shape)) {
      const key = prefix === '' ? name : `${prefix}.${name}`
      if (FIXED.has(key)) continue
      keys.push(key)
      const inner = objectShape(schema)
      if (inner !== undefined) walk(inner, key)
    }
  }
  walk(RepoConfigSchema.shape, '')
  return keys
}

/** The shape of an object schema, through `.default()`/`.optional()` wrappers. */
function objectShape (schema: any): Record<string, any> | undefined {
  let s = schema
  for (let i = 0; i < 4 && s !== undefined; i++) {
    if (s.shape !== undefined && typeof s.shape === 'object') return s.shape
    s = s.def?.innerType ?? s._def?.innerType
  }
  return undefined
}

/** True when `schema` (under its defaults and optionals) takes a list. */
function takesList (schema: any): boolean {
  let s = schema
  for (let i = 0; i < 4 && s !== undefined; i++) {
    if ((s.def?.type ?? s._def?.typeName) === 'array' || s._def?.typeName === 'ZodArray') return true
    s = s.def?.innerType ?? s._def?.innerType
  }
  return false
}

/** The schema of the setting at `path`. */
function schemaAt (path: string[]): any {
  let shape: Record<string, any> | undefined = RepoConfigSchema.shape
  let schema: any
  for (const part of path) {
    schema = shape?.[part]
    shape = objectShape(schema)
  }
  return schema
}

function checkKey (key: string): string[] {
  if (!settingKeys().includes(key)) throw new InvalidArgumentError(`no setting ${JSON.stringify(key)}; settings: ${settingKeys().join(', ')}`)
  return key.split('.')
}

/**
 * The value of `key` in `config` (undefined when unset, e.g. an optional setting).
 *
 * @throws {InvalidArgumentError} for a key that names no setting
 */
export function getSetting (config: RepoConfig, key: string): unknown {
  let at: any = config
  for (const part of checkKey(key)) at = at?.[part]
  return at
}

/** `text` as a setting's value: JSON when it parses, else the string itself. */
export function parseSettingValue (text: string): unknown {
  try { return JSON.parse(text) } catch { return text }
}

/**
 * `config` with `key` set to `value`, validated.
 *
 * @throws {InvalidArgumentError} for an unknown key or a value the config schema refuses (naming why)
 */
export function setSetting (config: RepoConfig, key: string, value: unknown): RepoConfig {
  const path = checkKey(key)
  // a section set whole would reset its other settings to their defaults (trusted writers, zone…)
  if (objectShape(schemaAt(path)) !== undefined) throw new InvalidArgumentError(`${key} is a section: set one of its settings (${settingKeys().filter(k => k.startsWith(`${key}.`)).join(', ')})`)
  // a tier's settings go together (an endpoint without a bucket is no tier): one of them alone was refused naming another
  if (path[0] === 'tier' && config.tier === undefined) throw new InvalidArgumentError(`${key}: no cold tier is set yet; set one with \`shoal tier s3 --endpoint URL --bucket NAME\` (its settings go together), then change them here`)
  const copy = structuredClone(config) as any
  let at = copy
  for (const part of path.slice(0, -1)) {
    at[part] ??= {}
    at = at[part]
  }
  // one value for a list setting (`config set listen /ip4/…/tcp/4001`) is a list of one
  at[path[path.length - 1]] = takesList(schemaAt(path)) && !Array.isArray(value) && value !== null && typeof value !== 'object' ? [value] : value
  const parsed = RepoConfigSchema.safeParse(copy)
  if (!parsed.success) throw new InvalidArgumentError(`${key}: ${parsed.error.issues.map(i => `${i.path.join('.') === key ? '' : `${i.path.join('.')}: `}${i.message}`).join('; ')}`)
  for (const [name, check] of Object.entries(CHECKS)) {
    if (name === key || name.startsWith(`${key}.`)) check(getSetting(parsed.data, name))
  }
  return parsed.data
}
