import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { InvalidArgumentError } from '../errors.js'

/** Files and folders inside a repo. */
export interface RepoLayout {
  root: string
  config: string
  identity: string
  apiToken: string
  /** Written by the running daemon: the API's multiaddr. */
  api: string
  /** Written by the running daemon: the gateway's URL, as Kubo writes it (absent when the gateway is off). */
  gateway: string
  /** Held by the running daemon: its pid. */
  lock: string
  swarmKey: string
  /** Peers to re-dial after a restart. */
  peers: string
  blocks: string
  namespace: string
  /** What this node holds and placed for durability (LevelDB). */
  durability: string
  tmp: string
  /** Files written through a mount whose commit failed when the mount went (a forced unmount, a stop): kept here, not lost (docs/fuse.md). */
  uncommitted: string
  /** What `close` acknowledged through a mount until its commit lands, for a start after a crash to commit (node/fuse/journal.ts). */
  fuseJournal: string
  /** Kept free-able space: deleted at a start on a full disk (node/repo/disk.ts). */
  ballast: string
}

/**
 * The repo folder: `--repo`, else `$SHOAL_PATH`, else `~/.shoal`.
 *
 * @throws {InvalidArgumentError} for an empty `--repo`
 */
export function resolveRepoPath (explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  // an empty path would resolve to the current directory (and `init` write a repo into it)
  if (explicit === '') throw new InvalidArgumentError('--repo is empty: give the repo folder')
  // an empty $SHOAL_PATH is taken as unset, as shells mean it
  return resolve(explicit ?? (env.SHOAL_PATH !== '' ? env.SHOAL_PATH : undefined) ?? join(homedir(), '.shoal'))
}

/** Paths of everything in the repo at `root`. */
export function repoLayout (root: string): RepoLayout {
  return {
    root,
    config: join(root, 'config.json'),
    identity: join(root, 'identity.key'),
    apiToken: join(root, 'api.token'),
    api: join(root, 'api'),
    gateway: join(root, 'gateway'),
    lock: join(root, 'daemon.lock'),
    swarmKey: join(root, 'swarm.key'),
    peers: join(root, 'peers.json'),
    blocks: join(root, 'blocks'),
    namespace: join(root, 'namespace'),
    durability: join(root, 'durability'),
    tmp: join(root, 'tmp'),
    uncommitted: join(root, 'uncommitted'),
    fuseJournal: join(root, 'fuse-journal'),
    ballast: join(root, 'ballast')
  }
}
