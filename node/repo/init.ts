import { randomBytes } from 'node:crypto'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { generateKeyPair, privateKeyToProtobuf, privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { AlreadyExistsError, InvalidArgumentError } from '../errors.js'
import { parseApiAddress } from '../../protocol/api-address.js'
import { parseSwarmKey, formatSwarmKey } from '../../protocol/swarm-key.js'
import { decodeInvite, inviteDialAddrs } from '../../protocol/invite.js'
import { parseChunker } from '../content/chunker/index.js'
import { parseGatewaySetting } from '../gateway/address.js'
import { DEFAULT_CONFIG, defaultGatewayFor, saveConfig, type RepoConfig } from './config.js'
import { repoLayout } from './layout.js'
import { makeFolder } from './make-folder.js'
import { checkListenAddress } from './listen-addresses.js'
import { closeRepoFolder } from './private-folder.js'
import { markNewNamespace } from '../namespace/index.js'
import type { PrivateKey } from '@libp2p/interface'

/** Options of `shoal init`. */
export interface InitOptions {
  /** libp2p listen multiaddrs. @default ['/ip4/0.0.0.0/tcp/4747'] */
  listen?: string[]
  /** Loopback HOST:PORT for the API. @default '127.0.0.1:5747' */
  api?: string
  /** HOST:PORT of the read-only gateway, or `off`. @default '127.0.0.1:5748'; `127.0.0.1:0` (a free port) when `api` is not the default */
  gateway?: string
  /** Text of a swarm key file to join a private swarm. */
  swarmKey?: string
  /** Make an open swarm (no swarm key: any Shoal node may connect). @default false: a private swarm with a fresh key */
  open?: boolean
  /** An invite (`shoal invite` on a member): join its swarm and dial the inviter at start. */
  join?: string
  chunker?: string
}

/** What `init` created. */
export interface InitResult { repo: string, peerId: string, config: RepoConfig }

/**
 * Create a repo: config, identity key, API token, store folders, and a swarm
 * key: a fresh one unless the repo joins a swarm (`swarmKey`, `join`) or is
 * made open (`open`). Every input is validated before anything is written.
 *
 * @throws {AlreadyExistsError} when a repo is already there
 * @throws {InvalidArgumentError} for bad options
 * @throws {RepoFolderError} when the repo folder, a missing parent of it or a folder in it cannot be made
 */
export async function initRepo (root: string, options: InitOptions = {}): Promise<InitResult> {
  const layout = repoLayout(root)
  const config: RepoConfig = { ...DEFAULT_CONFIG }
  if (options.api !== undefined) { parseApiAddress(options.api); config.api = options.api }
  // a repo whose API is moved off the default (a second repo on the machine, tests) would clash
  // with the first repo's gateway on the default port: its gateway picks a free port
  config.gateway = defaultGatewayFor(config.api)
  if (options.gateway !== undefined) { parseGatewaySetting(options.gateway); config.gateway = options.gateway }
  if (options.listen !== undefined) {
    for (const addr of options.listen) checkListenAddress(addr)
    config.listen = options.listen
  }
  if (options.chunker !== undefined) { parseChunker(options.chunker); config.chunker = options.chunker }
  const given = [options.swarmKey !== undefined && '--swarm-key', options.open === true && '--open', options.join !== undefined && '--join'].filter(Boolean)
  if (given.length > 1) throw new InvalidArgumentError(`${given.join(' and ')} exclude each other: a repo joins one swarm`)
  let psk: Uint8Array | undefined
  if (options.join !== undefined) {
    const invite = decodeInvite(options.join)
    psk = invite.key
    config.bootstrap = inviteDialAddrs(invite)
    // in an open swarm the inviter's entries are applied only when it is trusted
    if (psk === undefined) config.namespace = { ...config.namespace, trusted: [invite.peer] }
  } else if (options.swarmKey !== undefined) {
    psk = parseSwarmKey(options.swarmKey)
  } else if (options.open !== true) {
    psk = new Uint8Array(randomBytes(32))
  }
  config.privateSwarm = psk !== undefined

  if (await repoExists(root)) throw new AlreadyExistsError(`a Shoal repo already exists at ${root}`)
  // one level at a time, never Node's recursive mkdir (it loops forever under /proc: make-folder.ts);
  // the folders inside too, as the root may have been there already (`--repo /proc`)
  await makeFolder(root, { mode: 0o700 })
  for (const dir of [layout.blocks, layout.namespace, layout.tmp]) await makeFolder(dir)
  // a folder that was there before keeps its mode (often 0755): closed to others too (private-folder.ts)
  await closeRepoFolder(root)
  // a new identity's namespace store: its replica writes at once (a store lost later recovers first)
  await markNewNamespace(layout.namespace)
  const key = await generateKeyPair('Ed25519')
  await writeFile(layout.identity, privateKeyToProtobuf(key), { mode: 0o600 })
  await writeFile(layout.apiToken, randomBytes(32).toString('hex') + '\n', { mode: 0o600 })
  if (psk !== undefined) await writeFile(layout.swarmKey, formatSwarmKey(psk), { mode: 0o600 })
  // the config goes last: its presence is what marks a complete repo
  await saveConfig(layout.config, config)
  return { repo: root, peerId: peerIdFromPrivateKey(key).toString(), config }
}

/** Load the repo's libp2p identity. */
export async function loadIdentity (root: string): Promise<PrivateKey> {
  return privateKeyFromProtobuf(await readFile(repoLayout(root).identity))
}

/** True when `root` holds an initialised repo (its config is written last). */
export async function repoExists (root: string): Promise<boolean> {
  try {
    await stat(repoLayout(root).config)
    return true
  } catch {
    return false
  }
}
