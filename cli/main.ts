/**
 * The `shoal` command line: parses arguments, runs one command, turns any
 * error into one line on stderr and a non-zero exit code.
 *
 * @module
 */
import { arch, platform } from 'node:os'
import { Argument, Command, CommanderError, InvalidArgumentError as InvalidOptionValue, Option } from 'commander'
import { shoalVersion } from '../node/package-files.js'
import { resolveRepoPath } from '../node/repo/layout.js'
import type { LogLevel } from '../node/logger.js'
import { endQuietlyOnClosedStdout, printable, type GlobalOptions } from './output.js'
import { commandOf } from './relaunch.js'

/** Values of `--log-level` (the config's `logLevel` takes the same). */
const LOG_LEVELS: LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']

// Command modules load on use: a client command should not pay for loading
// the whole node (LevelDB, UnixFS, libp2p crypto) that only `daemon` needs.
const files = async (): Promise<typeof import('./commands/files.js')> => await import('./commands/files.js')
const car = async (): Promise<typeof import('./commands/car.js')> => await import('./commands/car.js')
const pins = async (): Promise<typeof import('./commands/pins.js')> => await import('./commands/pins.js')
const node = async (): Promise<typeof import('./commands/node.js')> => await import('./commands/node.js')
const peers = async (): Promise<typeof import('./commands/peers.js')> => await import('./commands/peers.js')
const fuse = async (): Promise<typeof import('./commands/fuse.js')> => await import('./commands/fuse.js')
const config = async (): Promise<typeof import('./commands/config.js')> => await import('./commands/config.js')
const ui = async (): Promise<typeof import('./commands/ui.js')> => await import('./commands/ui.js')

/** Exit code for a command that failed. */
export const EXIT_FAILURE = 1
/** Exit code for a command line that did not parse. */
export const EXIT_USAGE = 2

/**
 * A count of bytes given as an option (`--offset`, `--length`): digits only, at
 * most what a JavaScript number holds exactly. A value that is not one is a
 * command line that does not parse (exit 2), as an unknown option is; one
 * past the file's end is the read's to refuse, naming the size.
 */
function byteCount (value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidOptionValue('must be a non-negative integer')
  const n = Number(value)
  if (!Number.isSafeInteger(n)) throw new InvalidOptionValue(`must be at most ${Number.MAX_SAFE_INTEGER}`)
  return n
}

/**
 * The shape of a policy (`none`, `ec:K+M`, `replicas:N`): a value of another
 * shape is a usage error (exit 2) before any request; the daemon checks the
 * numbers' ranges (a refused policy, exit 1, saying the limits).
 */
function policyText (value: string): string {
  if (!/^(none|ec:\d+\+\d+|replicas:\d+)$/.test(value)) throw new InvalidOptionValue('expected "none", "ec:K+M" or "replicas:N"')
  return value
}

/** The shape of a chunker spec, as {@link policyText} checks a policy's (the sizes are checked where the file is cut). */
function chunkerText (value: string): string {
  if (!/^(fastcdc|fastcdc-\d+-\d+-\d+|size-\d+)$/.test(value)) throw new InvalidOptionValue('expected "fastcdc", "fastcdc-MIN-AVG-MAX" or "size-BYTES"')
  return value
}

/** Commander's own errors (usage): one line as every other error says it (`shoal: … (UsageError)`), JSON under `--json`. */
function usageOutput (json: boolean): (str: string, write: (str: string) => void) => void {
  return (str, write) => {
    const message = str.split('\n')[0].replace(/^error: /, '')
    write(json ? JSON.stringify({ error: { name: 'UsageError', message } }) + '\n' : `shoal: ${message} (UsageError)\n`)
  }
}

function build (json = false): Command {
  const program = new Command('shoal')
    .description('Shoal: a peer-to-peer replicated storage node')
    .option('--repo <dir>', 'repo folder (default: $SHOAL_PATH, else ~/.shoal)')
    .option('--json', 'print one JSON document on stdout', false)
    .option('--progress', 'draw progress bars on stderr even when it is not a terminal (never under --json)')
    .option('--no-progress', 'no progress bars (default: on stderr when it is a terminal)')
    .addOption(new Option('--log-level <level>', 'log level of the daemon (default: $SHOAL_LOG_LEVEL, else the config\'s logLevel, info)').choices(LOG_LEVELS).env('SHOAL_LOG_LEVEL'))
    .exitOverride()
    .configureOutput({ outputError: usageOutput(json) })
    .showSuggestionAfterError(true)

  const globals = (): GlobalOptions => {
    const o = program.opts<{ repo?: string, json: boolean, progress?: boolean }>()
    return { repo: resolveRepoPath(o.repo), json: o.json, progress: o.progress }
  }
  const collect = (value: string, previous: string[] = []): string[] => [...previous, value]

  // handled in main() before parsing (so that `--version --json` is JSON); declared here for the help
  program.option('-V, --version', 'print the version and exit')
  program.command('version').description('the version of Shoal and of Node.js it runs on')
    .action(() => { printVersion(globals().json) })

  program.command('init').description('create a repo')
    .option('--listen <multiaddr>', 'libp2p listen address (repeatable)', collect)
    .option('--api <host:port>', 'loopback address of the HTTP API (port 0 picks a free one)')
    .option('--swarm-key <file>', 'join the private swarm of this key (default: a new private swarm with a fresh key)')
    .option('--join <invite>', 'join the swarm of an invite (`shoal invite` on a member) and dial the inviter at start; `-` reads it from stdin')
    .option('--open', 'an open swarm: no swarm key, any Shoal node may connect (only trusted peers write the namespace)', false)
    .action(async opts => { await (await node()).initCommand(globals(), opts) })
  program.command('invite').description('print an invite to this node\'s swarm: a secret line for `shoal init --join`')
    .action(async () => { await (await peers()).inviteCommand(globals()) })
  program.command('daemon').description('run the node until SIGINT/SIGTERM')
    .option('--init', 'create the repo with defaults if there is none', false)
    .action(async opts => { await (await node()).daemonCommand(globals(), { ...opts, logLevel: program.opts<{ logLevel?: LogLevel }>().logLevel }) })
  program.command('id').description('peer id and addresses')
    .action(async () => { await (await node()).idCommand(globals()) })

  program.command('add').argument('<source>', 'local file or directory').description('add a file or directory to the namespace')
    .option('--to <path>', 'namespace path (an existing directory or a path ending in / receives the source by name)')
    .addOption(new Option('--chunker <spec>', 'fastcdc, fastcdc-MIN-AVG-MAX or size-N (size-262144 gives Kubo CIDs)').argParser(chunkerText))
    .addOption(new Option('--pin <policy>', 'ec:K+M, replicas:N or none (default: the configured policy for the file size)').argParser(policyText))
    .option('--wait', 'return only when the policy is met (every shard on its own live node); else once the file is durable here, placement going on in the background', false)
    .action(async (source, opts) => { await (await files()).addCommand(globals(), source, opts) })
  program.command('cat').argument('<target>', 'namespace path or CID').description('write a file to stdout')
    .addOption(new Option('--offset <bytes>', 'first byte').argParser(byteCount))
    .addOption(new Option('--length <bytes>', 'number of bytes').argParser(byteCount))
    .action(async (target, opts) => { await (await files()).catCommand(globals(), target, opts) })
  program.command('get').argument('<target>', 'namespace path or CID').description('save a file or directory')
    .requiredOption('-o, --output <path>', 'where to write it')
    .action(async (target, opts) => { await (await files()).getCommand(globals(), target, opts) })
  program.command('ls').argument('[target]', 'namespace path or CID', '/').description('list a directory')
    .action(async target => { await (await files()).lsCommand(globals(), target) })
  program.command('stat').argument('<target>', 'namespace path or CID').description('describe a file or directory')
    .action(async target => { await (await files()).statCommand(globals(), target) })
  program.command('mkdir').argument('<path>').description('create a directory')
    .option('-p, --parents', 'create missing parents; no error if it exists', false)
    .action(async (path, opts) => { await (await files()).mkdirCommand(globals(), path, opts) })
  program.command('mv').argument('<from>').argument('<to>').description('move or rename')
    .action(async (from, to) => { await (await files()).mvCommand(globals(), from, to) })
  program.command('rm').argument('<path>').description('remove a file or directory')
    .option('-r, --recursive', 'remove a directory and everything below it', false)
    .action(async (path, opts) => { await (await files()).rmCommand(globals(), path, opts) })

  program.command('mount').argument('<dir>', 'empty directory (absolute path)').description('mount the namespace on a directory (FUSE; the daemon serves it)')
    .action(async dir => { await (await fuse()).mountCommand(globals(), dir) })
  program.command('unmount').argument('<dir>', 'mountpoint (absolute path)').description('unmount, committing what was written through the mount (refused while files are open there)')
    .option('--force', 'unmount with files open: they fail, and what they wrote so far is committed')
    .action(async (dir, opts) => { await (await fuse()).unmountCommand(globals(), dir, opts) })
  program.command('mounts').description('active mounts of the daemon')
    .action(async () => { await (await fuse()).mountsCommand(globals()) })

  program.command('conflicts').description('list conflict copies left by concurrent writes')
    .action(async () => { await (await files()).conflictsCommand(globals()) })

  const pinCmd = program.command('pin').description('durability policies: erasure coding, replicas')
  pinCmd.command('add').argument('<target>', 'namespace path or CID (a CID is bound at /pins/<cid>)').description('pin a file with a policy')
    .addOption(new Option('--policy <policy>', 'ec:K+M, replicas:N or none (default: the configured policy for the file size; with --tier cold: none)').argParser(policyText))
    .addOption(new Option('--tier <tier>', 'cold: push a verified copy to the S3 tier (then hot copies may go); hot: bring a cold file back').choices(['hot', 'cold']))
    .action(async (target, opts) => { await (await pins()).pinAddCommand(globals(), target, opts) })
  pinCmd.command('rm').argument('<target>', 'namespace path or CID').description('unpin a file (it stays where its blocks are)')
    .action(async target => { await (await pins()).pinRmCommand(globals(), target) })
  pinCmd.command('ls').description('pinned files and their policies')
    .action(async () => { await (await pins()).pinLsCommand(globals()) })
  pinCmd.command('status').argument('<target>', 'namespace path or CID').description('health of every stripe of a pinned file')
    .option('--all', 'list healthy stripes too', false)
    .option('--verify', 'read the cold copy back whole and check every byte (costs one download of it)', false)
    .action(async (target, opts) => { await (await pins()).pinStatusCommand(globals(), target, opts) })
  const tierCmd = program.command('tier').description('the S3 cold tier')
  tierCmd.command('s3').description('set this node\'s cold tier (credentials: the standard AWS environment variables or shared files)')
    .requiredOption('--endpoint <url>', 'S3 API base URL, e.g. https://s3.eu-west-1.amazonaws.com or http://127.0.0.1:9000')
    .requiredOption('--bucket <name>', 'bucket (must exist)')
    .option('--prefix <prefix>', 'key prefix of every object Shoal writes')
    .option('--region <region>', 'signing region (default us-east-1)')
    .action(async opts => { await (await pins()).tierSetCommand(globals(), opts) })
  tierCmd.command('ls').description('the configured tier, whether it answers, and what it holds')
    .action(async () => { await (await pins()).tierLsCommand(globals()) })
  tierCmd.command('pull').argument('<target>', 'namespace path or CID').description('bring a cold file back into the swarm (pin add --tier hot)')
    .addOption(new Option('--policy <policy>', 'hot policy (default: the configured policy for the file size)').argParser(policyText))
    .action(async (target, opts) => { await (await pins()).pinAddCommand(globals(), target, { ...opts, tier: 'hot' }) })
  program.command('repair').description('check pinned files and rebuild lost shards now')
    .option('--wait', 'wait for the pass and print what it did', false)
    .option('--scrub', 're-hash every stored block first; rebuild or re-fetch corrupt ones', false)
    .option('--reindex', 'read every pack first and rebuild the block index from them (after a disk or index fault)', false)
    .action(async opts => { await (await pins()).repairCommand(globals(), opts) })
  program.command('gc').description('remove blocks this node does not need to keep')
    .action(async () => { await (await pins()).gcCommand(globals()) })

  const carCmd = program.command('car').description('CAR (content archive) import and export')
  carCmd.command('export').argument('<target>', 'namespace path or CID').description('write the DAG under a path or CID as a CARv1')
    .requiredOption('-o, --output <file>', 'CAR file to write (- for stdout)')
    .action(async (target, opts) => { await (await car()).carExportCommand(globals(), target, opts) })
  carCmd.command('import').argument('<file>', 'CAR file').description('verify and import a CAR (all or nothing); its roots go into the namespace, so gc keeps them')
    .option('--to <path>', 'where the root goes (with several roots: the folder of the roots)', '/imported/<root cid>')
    .addOption(new Option('--pin-roots <bool>', 'bind the roots into the namespace (false: gc may drop what was imported)').choices(['true', 'false']).default('true'))
    .action(async (file, opts) => { await (await car()).carImportCommand(globals(), file, opts) })
  const configCmd = program.command('config').description('read or change a setting of the repo (applies at the daemon\'s next start)')
  configCmd.command('get').argument('[key]', 'dotted setting, e.g. api or namespace.syncInterval (default: the whole config)').description('print a setting')
    .action(async key => { await (await config()).configGetCommand(globals(), key) })
  configCmd.command('set').argument('<key>', 'dotted setting, e.g. api').argument('<value>', 'JSON (numbers, true/false, lists, "quoted") or a plain string').description('change a setting (validated; a bad value changes nothing)')
    .action(async (key, value) => { await (await config()).configSetCommand(globals(), key, value) })
  program.command('status').description('node, swarm and storage summary')
    .action(async () => { await (await peers()).statusCommand(globals()) })
  program.command('ui').description('print the address of the status page, with the API token that logs in (a secret)')
    .action(async () => { await (await ui()).uiCommand(globals()) })
  const peersCmd = program.command('peers').description('manage connections to other nodes')
  peersCmd.command('ls').description('connected peers: id, direction, latency, addresses')
    .action(async () => { await (await peers()).peersLsCommand(globals()) })
  peersCmd.command('connect').argument('<multiaddr>', 'address ending in /p2p/<peer id>').description('connect to a peer (and re-dial it after restarts)')
    .action(async addr => { await (await peers()).peersConnectCommand(globals(), addr) })
  peersCmd.command('disconnect').argument('<peer>', 'peer id').description('disconnect from a peer and stop dialling it (it may dial this node again: a member is kept out by a new swarm key, docs/security.md)')
    .action(async peer => { await (await peers()).peersDisconnectCommand(globals(), peer) })
  peersCmd.command('forget').argument('<peer>', 'peer id of a member whose node is gone for good').description('stop waiting for a member whose node is gone for good (its disk lost): gc and compaction here no longer wait for it (run it on every node; a member that comes back counts again)')
    .action(async peer => { await (await peers()).peersForgetCommand(globals(), peer) })
  const trustCmd = program.command('trust').description('who may write the namespace (docs/security.md)')
  trustCmd.command('ls').description('the writers this node trusts')
    .action(async () => { await (await peers()).trustLsCommand(globals()) })
  trustCmd.command('add').argument('<peer>', 'peer id').description('apply this peer\'s namespace entries from now on')
    .action(async peer => { await (await peers()).trustChangeCommand(globals(), 'add', peer) })
  trustCmd.command('rm').argument('<peer>', 'peer id').description('stop applying this peer\'s namespace entries')
    .action(async peer => { await (await peers()).trustChangeCommand(globals(), 'rm', peer) })
  trustCmd.command('writers').description('who writes in a private swarm: every member (swarm) or only the listed peers (listed)')
    .addArgument(new Argument('<mode>').choices(['swarm', 'listed']))
    .action(async mode => { await (await peers()).trustWritersCommand(globals(), mode) })
  const swarmCmd = program.command('swarm').description('private swarm')
  const keyCmd = swarmCmd.command('key').description('swarm keys')
  keyCmd.command('new').description('print a new private-swarm key (give it to `shoal init --swarm-key`)')
    .action(async () => { await (await peers()).swarmKeyNewCommand(globals()) })
  for (const cmd of [program, carCmd, peersCmd, trustCmd, swarmCmd, keyCmd, ...program.commands]) cmd.exitOverride().configureOutput({ outputError: usageOutput(json) })
  return program
}

function printVersion (json: boolean): void {
  const v = { version: shoalVersion(), node: process.version, platform: `${platform()}-${arch()}` }
  process.stdout.write(json ? JSON.stringify(v) + '\n' : `shoal ${v.version} (node ${v.node}, ${v.platform})\n`)
}

/**
 * A Node system error the commands did not name (`EEXIST: file already
 * exists, mkdir '/x'`) as one line that says what failed on which path,
 * under the name `LocalFileError`; undefined for any other error.
 */
function systemError (err: unknown): { name: string, message: string } | undefined {
  if (!(err instanceof Error) || err.name !== 'Error') return undefined
  const { code, syscall, path } = err as NodeJS.ErrnoException
  if (typeof code !== 'string' || typeof syscall !== 'string') return undefined
  const where = typeof path === 'string' ? ` ${path}` : ''
  const why = err.message.replace(/^[A-Z]+: /, '').replace(/, \w+( '.*')?$/, '')
  return { name: 'LocalFileError', message: `cannot ${syscall}${where}: ${why} (${code})` }
}

/**
 * The first word of `shoal help WORD…` that names no command (under the
 * words before it), if one does not: Commander would print the whole help,
 * as an error, instead of saying which word it did not know.
 */
function unknownHelpTopic (program: Command, argv: readonly string[]): string | undefined {
  const words = argv.slice(argv.indexOf('help') + 1).filter(a => !a.startsWith('-'))
  let cmd = program
  for (const word of words) {
    if (word === 'help' && cmd === program) continue // Commander's own help command
    const sub = cmd.commands.find(c => c.name() === word || c.aliases().includes(word))
    if (sub === undefined) return word
    cmd = sub
  }
  return undefined
}

/** Run the CLI; resolves with the process exit code. */
export async function main (argv: string[]): Promise<number> {
  const json = argv.slice(2).includes('--json')
  if (argv.slice(2).some(a => a === '--version' || a === '-V')) { printVersion(json); return 0 }
  const program = build(json)
  // not for the daemon (its logs go to stdout), nor for `cat`: it writes stdout's descriptor itself and ends quietly
  // on EPIPE, and making `process.stdout` turns a pipe non-blocking, so its writes would meet EAGAIN and go through
  // the stream (the CLI's CPU per byte doubled: docs/benchmarks.md, "Transfer")
  const command = commandOf(argv)
  if (command !== 'daemon' && command !== 'cat') endQuietlyOnClosedStdout()
  if (command === 'help') {
    const unknown = unknownHelpTopic(program, argv)
    if (unknown !== undefined) { usageOutput(json)(`unknown command '${unknown}'`, text => process.stderr.write(text)); return EXIT_USAGE }
    // `shoal help pin status` is `shoal pin status --help` (Commander's own help command reads one word)
    const at = argv.indexOf('help')
    if (argv.length > at + 1) argv = [...argv.slice(0, at), ...argv.slice(at + 1), '--help']
  }
  try {
    await program.parseAsync(argv)
    return typeof process.exitCode === 'number' ? process.exitCode : 0
  } catch (err: any) {
    if (err instanceof CommanderError) {
      // help and version are not failures; usage errors were already printed
      return err.exitCode === 0 ? 0 : EXIT_USAGE
    }
    const system = systemError(err)
    const name = system?.name ?? (err?.name !== undefined && err.name !== 'Error' ? String(err.name) : undefined)
    // a typed error's message is whole (a path in it may hold a newline: escaped below); an untyped one's first line
    const message = system?.message ?? (name !== undefined ? String(err?.message ?? err) : String(err?.message ?? err).split('\n')[0])
    // under --json, the error is one JSON line too (scripts parse one format)
    if (program.opts<{ json?: boolean }>().json === true) process.stderr.write(JSON.stringify({ error: { name: name ?? 'Error', message } }) + '\n')
    else process.stderr.write(printable(`shoal: ${message}${name !== undefined ? ` (${name})` : ''}`) + '\n')
    // a command stopped by a signal exits as a shell reports that signal (130 for Ctrl-C)
    return err?.name === 'AddInterruptedError' && typeof err.exitCode === 'number' ? err.exitCode : EXIT_FAILURE
  }
}
