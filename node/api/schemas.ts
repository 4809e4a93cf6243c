import { z } from 'zod'
import { InvalidArgumentError } from '../errors.js'
import { MAX_TIME } from '../../protocol/namespace.js'

const bool = z.enum(['true', 'false', '1', '0', '']).transform(v => v === 'true' || v === '1' || v === '')
/** Digits only; one too large for a JavaScript number to hold exactly says so (a range past a file's end is its reader's to refuse, naming the size). */
const nonNegInt = z.string().regex(/^\d+$/, 'must be a non-negative integer').transform(Number)
  .refine(Number.isSafeInteger, `must be at most ${Number.MAX_SAFE_INTEGER}`)
const arg = z.string().min(1, 'is required').max(8192)
const mountPath = z.string().min(1, 'is required').max(4096).refine(v => v.startsWith('/'), 'must be an absolute path')
/** Permission bits in octal (`644`, `0755`). */
const octalMode = z.string().regex(/^[0-7]{1,4}$/, 'must be octal permission bits').transform(v => parseInt(v, 8))
/** A namespace path: an empty one is the namespace's to refuse, with a message that says so (`InvalidPathError`), not `arg: is required`. */
const path = z.string().max(8192)
/** When the caller began, ms since the epoch (what it never saw arrived after: `Files.arrivedAfter`). */
const started = nonNegInt.refine(v => v <= MAX_TIME, `must be at most ${MAX_TIME} (ms)`)

/** Query schemas, one per route. Unknown parameters are rejected. */
export const schemas = {
  none: z.object({}).strict(),
  arg: z.object({ arg }).strict(),
  /** `started`: when the caller began; an entry that arrived from another node after it says so (`arrivedAfterStart`). */
  stat: z.object({ arg, started: started.optional() }).strict(),
  add: z.object({
    to: arg,
    chunker: z.string().max(64).optional(),
    mode: octalMode.optional(),
    mtime: nonNegInt.refine(v => v <= MAX_TIME, `must be at most ${MAX_TIME} (ms)`).optional(),
    pin: z.string().max(32).optional(),
    wait: bool.optional(),
    /** When the caller began (ms since the epoch): another node's version that arrived after it is kept beside this one. */
    started: started.optional()
  }).strict(),
  /** The files' paths, modes and mtimes are in the body's manifest (protocol/add-batch.ts). */
  addMany: z.object({
    chunker: z.string().max(64).optional(),
    pin: z.string().max(32).optional(),
    started: started.optional()
  }).strict(),
  /** `verify`: read the cold copy back whole (node/tiers/cold-health.ts). */
  pinStatus: z.object({ arg, verify: bool.optional() }).strict(),
  pinAdd: z.object({ arg, policy: z.string().max(32).optional(), tier: z.enum(['hot', 'cold']).optional() }).strict(),
  /** `shoal tier s3`: checked again, fully, by the tier service. */
  tierSet: z.object({ endpoint: z.string().min(1).max(2048), bucket: z.string().min(1).max(255), prefix: z.string().max(512).optional(), region: z.string().max(64).optional() }).strict(),
  /** `progress`: stream progress lines, then the result (implies `wait`; node/api/progress.ts). */
  repair: z.object({ wait: bool.optional(), scrub: bool.optional(), reindex: bool.optional(), progress: bool.optional() }).strict(),
  gc: z.object({ progress: bool.optional() }).strict(),
  /** `pipe-pid`, `pipe-ino`: the caller's stdout pipe, written by the daemon when it proves to be the caller's (node/api/caller-pipe.ts). */
  cat: z.object({
    arg,
    offset: nonNegInt.optional(),
    length: nonNegInt.optional(),
    'pipe-pid': z.string().regex(/^[1-9]\d{0,9}$/, 'must be a process id').transform(Number).optional(),
    'pipe-ino': z.string().regex(/^\d{1,20}$/, 'must be an inode number').transform(BigInt).optional()
  }).strict().refine(q => (q['pipe-pid'] === undefined) === (q['pipe-ino'] === undefined), 'pipe-pid and pipe-ino go together'),
  streamError: z.object({ id: nonNegInt }).strict(),
  /** `started`: when the caller began; a file at `arg` that arrived from another node after it is kept beside the directory. */
  mkdir: z.object({ arg: path, parents: bool.optional(), mode: octalMode.optional(), started: started.optional() }).strict(),
  mv: z.object({ from: path, to: path }).strict(),
  rm: z.object({ arg: path, recursive: bool.optional(), started: started.optional() }).strict(),
  carImport: z.object({
    to: arg.optional(),
    'pin-roots': z.enum(['true', 'false'], { message: 'must be true or false' }).optional(),
    progress: bool.optional()
  }).strict(),
  peersConnect: z.object({ addr: arg }).strict(),
  peersDisconnect: z.object({ peer: arg }).strict(),
  peersForget: z.object({ peer: arg }).strict(),
  trustPeer: z.object({ peer: z.string().min(1, 'is required').max(256) }).strict(),
  trustWriters: z.object({ mode: z.enum(['swarm', 'listed']) }).strict(),
  /** FUSE mountpoint: an absolute path on the daemon's machine. */
  mount: z.object({ path: mountPath }).strict(),
  /** `force`: unmount with files open (docs/fuse.md). */
  unmount: z.object({ path: mountPath, force: bool.optional() }).strict()
}

/** Query fields named as a user of the CLI knows them (`shoal cat ''` said "arg: is required"). */
const FIELD_NAMES: Record<string, string> = {
  arg: 'the path or CID',
  to: 'the destination path (--to)',
  from: 'the source path',
  addr: 'the peer address',
  peer: 'the peer id',
  path: 'the mountpoint'
}

/** How an error names the query field `field`: its user's name, else the field as it is (`offset`, `mode`). */
function fieldName (field: string): string {
  return FIELD_NAMES[field] ?? field
}

/**
 * Validate a query string against a schema.
 *
 * @throws {InvalidArgumentError} naming the bad field
 */
export function parseQuery<T extends z.ZodTypeAny> (schema: T, params: URLSearchParams): z.infer<T> {
  const raw: Record<string, string> = {}
  for (const [k, v] of params) {
    if (k in raw) throw new InvalidArgumentError(`query parameter ${k} given twice`)
    raw[k] = v
  }
  const parsed = schema.safeParse(raw)
  if (!parsed.success) {
    throw new InvalidArgumentError(parsed.error.issues.map(i => i.path.length > 0 ? `${fieldName(i.path.join('.'))} ${i.message}` : i.message).join('; '))
  }
  return parsed.data
}
