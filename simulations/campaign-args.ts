/**
 * The command line of `npm run sim`, parsed: one scale run (the original
 * form, `--nodes --seed --duration`), one seed of one or every kind
 * (`--kind K --seed S`, the form every reproduction line takes), or a seed
 * campaign (`--seeds N`, seeds drawn from a printed campaign seed or
 * `--from S`).
 *
 * @module
 */
import { parseArgs } from 'node:util'
import { RUN_DEFAULTS, SIM_KINDS, type CampaignOptions, type SimKind } from './campaign.js'

/** A command line `npm run sim` cannot run: the message says what is wrong in one line. */
export class SimArgsError extends Error {
  override name = 'SimArgsError'
}

/** What `npm run sim -- --help` prints. */
export const SIM_USAGE = `usage: npm run sim -- [options]
  one scale run:   --nodes N --seed S --duration MS [--degree D] [--writers W] [--partition-writers P]
                   [--interval MS] [--crashes C] [--disk-losses L] [--restores R] [--joins J] [--leaves V] [--losses-together] [--skip-recovery]
  one seed:        --kind namespace|scale|durability|all --seed S [--nodes N] [--steps N] [--files N] [--duration MS]
  a campaign:      --seeds N [--from S | --campaign C] [--kind K] [--nodes N] [--stop-on-failure] [--skip-recovery]
  --help           this text`

/** What the command line asks for. */
export type SimCommand =
  /** `--help`: print {@link SIM_USAGE}. */
  | { mode: 'help' }
  /** One scale run with its own report (no `--kind`, no `--seeds`). */
  | { mode: 'scale', nodes: number, seed: number, duration: number, degree: number, writers: number, partitionWriters: number, interval: number, crashes: number, lifecycle: ScaleLifecycleArgs }
  /** A campaign: `seeds` seeds (`from`, or drawn from `campaign` when undefined), or the single `seed` when `seeds` is undefined. */
  | { mode: 'campaign', seeds?: number, seed: number, from?: number, campaign?: number, options: Omit<CampaignOptions, 'seeds' | 'print'> }

/** The lifecycle faults of one scale run (`--disk-losses --restores --joins --leaves --losses-together --skip-recovery`; scale-sim.ts `ScaleOptions`). */
export interface ScaleLifecycleArgs {
  diskLosses: number
  restores: number
  joins: number
  leaves: number
  lossesTogether: boolean
  skipRecovery: boolean
}

const OPTIONS = {
  kind: { type: 'string' },
  seeds: { type: 'string' },
  from: { type: 'string' },
  campaign: { type: 'string' },
  seed: { type: 'string' },
  nodes: { type: 'string' },
  duration: { type: 'string' },
  degree: { type: 'string' },
  writers: { type: 'string' },
  'partition-writers': { type: 'string' },
  interval: { type: 'string' },
  crashes: { type: 'string' },
  'disk-losses': { type: 'string' },
  restores: { type: 'string' },
  joins: { type: 'string' },
  leaves: { type: 'string' },
  'losses-together': { type: 'boolean' },
  steps: { type: 'string' },
  files: { type: 'string' },
  'skip-recovery': { type: 'boolean' },
  'stop-on-failure': { type: 'boolean' },
  help: { type: 'boolean' }
} as const

/** A whole number from an option, at least `min`, or `fallback` when absent; throws on anything else. */
function int (name: string, text: string | undefined, fallback: number, min = 0): number {
  if (text === undefined) return fallback
  const n = Number(text)
  if (text.trim() === '' || !Number.isSafeInteger(n)) throw new SimArgsError(`--${name} must be a whole number, not '${text}'`)
  if (n < min) throw new SimArgsError(`--${name} must be at least ${min}, not ${n}`)
  return n
}

function optional (name: string, text: string | undefined): number | undefined {
  return text === undefined ? undefined : int(name, text, 0)
}

/**
 * Parse `npm run sim` arguments (without the node and script paths).
 *
 * @throws {SimArgsError} an unknown option, a missing or malformed value, a value out of range
 */
export function parseSimArgs (argv: readonly string[]): SimCommand {
  let v: ReturnType<typeof parseOptions>
  try {
    v = parseOptions(argv)
  } catch (err) {
    // node:util's parse errors carry a code (ERR_PARSE_ARGS_*) and a message that names the option
    throw new SimArgsError((err as Error).message.split('\n')[0])
  }
  if (v.help === true) return { mode: 'help' }
  const d = RUN_DEFAULTS
  const onlyDurability = v.kind === 'durability'
  const scale = {
    duration: int('duration', v.duration, onlyDurability ? d.durabilityDuration : d.duration),
    degree: int('degree', v.degree, d.degree, 1),
    writers: int('writers', v.writers, d.writers),
    interval: int('interval', v.interval, d.interval, 1)
  }
  if (v.kind === undefined && v.seeds === undefined) {
    const nodes = int('nodes', v.nodes, 1000, 2)
    const crashes = int('crashes', v.crashes, 0)
    const lifecycle: ScaleLifecycleArgs = {
      diskLosses: int('disk-losses', v['disk-losses'], 0),
      restores: int('restores', v.restores, 0),
      joins: int('joins', v.joins, 0),
      leaves: int('leaves', v.leaves, 0),
      lossesTogether: v['losses-together'] === true,
      skipRecovery: v['skip-recovery'] === true
    }
    const faulted = crashes + lifecycle.diskLosses + lifecycle.restores + lifecycle.leaves
    if (faulted >= nodes) throw new SimArgsError(`--crashes, --disk-losses, --restores and --leaves together (${faulted}) must be fewer than --nodes (${nodes})`)
    const partitionWriters = int('partition-writers', v['partition-writers'], scale.writers)
    if (partitionWriters > scale.writers) throw new SimArgsError(`--partition-writers (${partitionWriters}) must be at most --writers (${scale.writers})`)
    return { mode: 'scale', nodes, seed: int('seed', v.seed, 1), crashes, lifecycle, partitionWriters, ...scale }
  }
  const kinds = kindsOf(v.kind ?? 'all')
  const defaultNodes = kinds.length === 1 && kinds[0] === 'namespace'
    ? d.namespaceNodes
    : kinds.length === 1 && kinds[0] === 'durability' ? d.durabilityNodes : 100
  const seeds = optional('seeds', v.seeds)
  if (seeds !== undefined && (seeds < 1 || seeds > 1_000_000)) throw new SimArgsError('--seeds must be 1..1000000')
  return {
    mode: 'campaign',
    seeds,
    seed: int('seed', v.seed, 1),
    from: optional('from', v.from),
    campaign: optional('campaign', v.campaign),
    options: {
      kinds,
      nodes: int('nodes', v.nodes, defaultNodes, 2),
      stopOnFailure: v['stop-on-failure'] === true,
      params: { ...scale, steps: int('steps', v.steps, d.steps), files: int('files', v.files, d.files), skipRecovery: v['skip-recovery'] === true }
    }
  }
}

function kindsOf (text: string): SimKind[] {
  if (text === 'all') return [...SIM_KINDS]
  if ((SIM_KINDS as readonly string[]).includes(text)) return [text as SimKind]
  throw new SimArgsError(`--kind must be namespace, scale, durability or all, not ${text}`)
}

function parseOptions (argv: readonly string[]): ReturnType<typeof parseArgs<{ args: string[], options: typeof OPTIONS, strict: true }>>['values'] {
  return parseArgs({ args: [...argv], options: OPTIONS, strict: true }).values
}

/** The arguments of a reproduction line (`npm run sim -- …`, a trailing `# reason` dropped). */
export function argsOfLine (line: string): string[] {
  const body = line.replace(/^.*?npm run sim --\s*/, '').replace(/\s+#.*$/, '')
  return body.split(/\s+/).filter(s => s.length > 0)
}
