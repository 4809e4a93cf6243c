/**
 * Which response a request gets: one raw block, a CAR, or the deserialized
 * content (file bytes, a directory listing). The `format` query parameter
 * wins over the `Accept` header, as the trustless-gateway spec says; among
 * `Accept` entries the highest `q` that this gateway can produce wins (a
 * CAR entry asking for a variant it does not write gives way to the next
 * entry, which may be a CAR variant it writes).
 *
 * What is refused: a `format` nobody knows (400); a type this gateway does
 * not produce (dag-json, dag-cbor, tar, IPNS records: 406); a CAR variant
 * other than version 1, `order=dfs` (or `unk`) and `dups=n` (406); a
 * `dag-scope` or `entity-bytes` that does not parse (400).
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js'
import { NotAcceptableError } from './errors.js'

/** Media type of one raw block. */
export const RAW_TYPE = 'application/vnd.ipld.raw'
/** Media type of a CAR. */
export const CAR_TYPE = 'application/vnd.ipld.car'
/** The one CAR variant this gateway writes (and says it writes). */
export const CAR_CONTENT_TYPE = `${CAR_TYPE}; version=1; order=dfs; dups=n`

/** How much of the DAG at the end of the path a CAR holds (trustless-gateway spec). */
export type DagScope = 'all' | 'entity' | 'block'

/**
 * `entity-bytes=from:to`: an inclusive byte range of the file at the end of
 * the path. Negative values count from the end; `to` undefined is `*` (the
 * last byte).
 */
export interface EntityBytes { from: number, to?: number }

/** The response a request gets. */
export type ResponseFormat =
  | { kind: 'raw' }
  | { kind: 'car', scope: DagScope, entityBytes?: EntityBytes }
  | { kind: 'deserialized' }

/** `format` values this gateway knows of but does not produce. */
const NOT_PRODUCED_FORMATS = new Set(['tar', 'dag-json', 'dag-cbor', 'json', 'cbor', 'ipns-record'])
/** Media types this gateway knows of but does not produce. */
const NOT_PRODUCED_TYPES = new Set([
  'application/vnd.ipld.dag-json', 'application/vnd.ipld.dag-cbor', 'application/x-tar',
  'application/vnd.ipfs.ipns-record'
])

interface MediaRange { type: string, params: Map<string, string>, q: number }

/** Parse an `Accept` header into media ranges, best first (stable for equal `q`). */
function parseAccept (header: string): MediaRange[] {
  const ranges: MediaRange[] = []
  for (const part of header.split(',')) {
    const [type, ...rawParams] = part.split(';').map(s => s.trim())
    if (type === '') continue
    const params = new Map<string, string>()
    for (const p of rawParams) {
      const eq = p.indexOf('=')
      if (eq > 0) params.set(p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1'))
    }
    const q = params.has('q') ? Number(params.get('q')) : 1
    ranges.push({ type: type.toLowerCase(), params, q: Number.isFinite(q) ? q : 0 })
  }
  return ranges.filter(r => r.q > 0).sort((a, b) => b.q - a.q)
}

/** Check the CAR variant asked for; every parameter may be absent. */
function checkCarVariant (variant: { version?: string, order?: string, dups?: string }): void {
  if (variant.version !== undefined && variant.version !== '1') throw new NotAcceptableError(`CAR version ${variant.version} is not produced: only version=1`)
  if (variant.order !== undefined && variant.order !== 'dfs' && variant.order !== 'unk') throw new NotAcceptableError(`CAR order ${variant.order} is not produced: only order=dfs`)
  if (variant.dups !== undefined && variant.dups !== 'n') throw new NotAcceptableError(`CAR dups=${variant.dups} is not produced: only dups=n (each block once)`)
}

/** Parse `entity-bytes=from:to`. */
export function parseEntityBytes (text: string): EntityBytes {
  const m = /^(-?\d{1,16}):(-?\d{1,16}|\*)$/.exec(text)
  if (m === null) throw new InvalidArgumentError(`invalid entity-bytes ${JSON.stringify(text.slice(0, 60))}: expected FROM:TO (integers, negative from the end, TO may be *)`)
  const from = Number(m[1])
  const to = m[2] === '*' ? undefined : Number(m[2])
  if (to !== undefined && from >= 0 && to >= 0 && to < from) throw new InvalidArgumentError(`invalid entity-bytes ${text}: TO is before FROM`)
  return { from, to }
}

function parseScope (query: URLSearchParams): { scope: DagScope, entityBytes?: EntityBytes } {
  const scopeText = query.get('dag-scope')
  const bytesText = query.get('entity-bytes')
  if (scopeText !== null && scopeText !== 'all' && scopeText !== 'entity' && scopeText !== 'block') {
    throw new InvalidArgumentError(`invalid dag-scope ${JSON.stringify(scopeText.slice(0, 60))}: all, entity or block`)
  }
  if (bytesText === null) return { scope: scopeText ?? 'all' }
  const entityBytes = parseEntityBytes(bytesText)
  if (scopeText !== null && scopeText !== 'entity') throw new InvalidArgumentError(`entity-bytes goes with dag-scope=entity, not dag-scope=${scopeText}`)
  return { scope: 'entity', entityBytes }
}

/**
 * The response format of a request.
 *
 * @throws {InvalidArgumentError} for an unknown `format`, bad `dag-scope` or `entity-bytes`
 * @throws {NotAcceptableError} for a type or CAR variant this gateway does not produce
 */
export function negotiate (query: URLSearchParams, accept: string | undefined): ResponseFormat {
  const format = query.get('format')
  const ranges = parseAccept(accept ?? '')
  /** A CAR as the query (and the `Accept` entry `range`, if any) describe it. */
  const car = (range?: MediaRange): ResponseFormat => {
    checkCarVariant({
      version: query.get('car-version') ?? range?.params.get('version'),
      order: query.get('car-order') ?? range?.params.get('order'),
      dups: query.get('car-dups') ?? range?.params.get('dups')
    })
    return { kind: 'car', ...parseScope(query) }
  }
  if (format !== null) {
    if (format === 'raw') return { kind: 'raw' }
    if (format === 'car') {
      // the query takes precedence over Accept: a CAR entry's variant is used when this gateway writes it, the next
      // entry's when not, and the default variant when none is (the CAR variant the query itself names is checked)
      for (const range of ranges.filter(r => r.type === CAR_TYPE)) {
        try {
          return car(range)
        } catch (err) {
          if (!(err instanceof NotAcceptableError)) throw err
        }
      }
      return car()
    }
    if (NOT_PRODUCED_FORMATS.has(format)) throw new NotAcceptableError(`format=${format} is not produced by this gateway: raw, car, or none for the content itself`)
    throw new InvalidArgumentError(`unknown format ${JSON.stringify(format.slice(0, 60))}: raw or car`)
  }
  if (ranges.length === 0) return { kind: 'deserialized' }
  // best q first: the first entry this gateway can produce wins; a CAR entry whose variant it cannot write gives way to the next
  let refused: NotAcceptableError | undefined
  for (const range of ranges) {
    if (range.type === RAW_TYPE) return { kind: 'raw' }
    if (range.type === CAR_TYPE) {
      try {
        return car(range)
      } catch (err) {
        if (!(err instanceof NotAcceptableError)) throw err
        refused ??= err
        continue
      }
    }
    if (!NOT_PRODUCED_TYPES.has(range.type)) return { kind: 'deserialized' }
  }
  throw refused ?? new NotAcceptableError(`none of the accepted types (${ranges.map(r => r.type).join(', ')}) is produced by this gateway: ${RAW_TYPE}, ${CAR_TYPE}, or the content itself`)
}
