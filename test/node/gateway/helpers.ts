/**
 * What the gateway tests share: a gateway over a fresh local block store,
 * the gateway URL of a test daemon, HTTP calls with a bound, hash checks of
 * blocks and CARs, and an independent trustless-gateway client
 * (`@helia/block-brokers`) pointed at a gateway.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { CarReader } from '@ipld/car'
import { trustlessGateway } from '@helia/block-brokers'
import { multiaddr } from '@multiformats/multiaddr'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { Blocks } from '../../../node/reads/blocks.js'
import { createGatewayServer, gatewayUrl, type GatewayServerInit, type PinIndex } from '../../../node/gateway/index.js'
import { createNamespace, signerFromKey, type Replica } from '../../../node/namespace/index.js'
import { createLogger } from '../../../node/logger.js'
import { defer, openBlockStore, tempDir, type CleanupContext } from '../../helpers/temp.js'
import type { PackBlockStore } from '../../../node/blocks/index.js'
import type { CID } from 'multiformats/cid'

/** A gateway over a local block store and namespace replica, as {@link startLocalGateway} starts it. */
export interface LocalGateway { gw: string, store: PackBlockStore, namespace: Replica, pins: PinIndex }

/** A gateway on 127.0.0.1 over a fresh block store and namespace, stopped when the test ends. */
export async function startLocalGateway (t: CleanupContext, init: Partial<GatewayServerInit> = {}): Promise<LocalGateway> {
  const store = await openBlockStore(t)
  const namespace = createNamespace({ path: await tempDir(t, 'shoal-gw-ns-'), signer: signerFromKey(await generateKeyPair('Ed25519')), logger: createLogger('silent') })
  await namespace.open()
  defer(t, async () => { await namespace.close() })
  const blocks = new Blocks({ blockstore: store, logger: createLogger('silent') })
  const server = createGatewayServer({ blocks, namespace, logger: createLogger('silent'), blockstore: store }, { host: '127.0.0.1', port: 0, ...init })
  const address = await server.start()
  defer(t, async () => { await server.stop() })
  return { gw: gatewayUrl(address.address, address.port), store, namespace, pins: server.pins }
}

/** Bound of one HTTP call. */
const CALL_TIMEOUT_MS = 30_000

/** The gateway URL a daemon wrote to `<repo>/gateway`. */
export async function gatewayOf (repo: string): Promise<string> {
  const url = (await readFile(join(repo, 'gateway'), 'utf8')).trim()
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/)
  return url
}

/** A gateway answer with its whole body. */
export interface Answer { status: number, headers: Headers, body: Buffer, json: () => any }

/** `fetch` with a bound, the body read whole (tests use small answers). */
export async function call (url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(CALL_TIMEOUT_MS) })
  const body = Buffer.from(await res.arrayBuffer())
  return { status: res.status, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')) }
}

/** Assert an error answer: its status, and a JSON body naming the error. */
export function assertError (a: Answer, status: number, name: string): void {
  assert.equal(a.status, status, a.body.subarray(0, 300).toString('utf8'))
  assert.match(a.headers.get('content-type') ?? '', /^application\/json/)
  const doc = a.json()
  assert.equal(doc.error.name, name)
  assert.ok(typeof doc.error.message === 'string' && doc.error.message.length > 0)
}

/** Throw unless `bytes` hash to `cid` (sha-256, or identity). */
export function verifyBlock (cid: CID, bytes: Uint8Array): void {
  if (cid.multihash.code === 0x00) {
    assert.deepEqual(Buffer.from(bytes), Buffer.from(cid.multihash.digest))
    return
  }
  assert.equal(cid.multihash.code, 0x12, `sha-256 expected for ${cid.toString()}`)
  const digest = createHash('sha256').update(bytes).digest()
  if (!digest.equals(Buffer.from(cid.multihash.digest))) throw new Error(`block ${cid.toString()} does not hash to its CID`)
}

/** A CAR parsed with @ipld/car, every block hash-checked. */
export async function parseVerifiedCar (bytes: Uint8Array): Promise<{ roots: string[], blocks: Array<{ cid: CID, bytes: Uint8Array }> }> {
  const reader = await CarReader.fromBytes(bytes)
  const blocks: Array<{ cid: CID, bytes: Uint8Array }> = []
  for await (const block of reader.blocks()) {
    verifyBlock(block.cid, block.bytes)
    blocks.push(block)
  }
  return { roots: (await reader.getRoots()).map(c => c.toString()), blocks }
}

/** A silent libp2p-style component logger (the broker only logs through it). */
function silentLogger (): any {
  const log: any = () => {}
  log.error = () => {}
  log.trace = () => {}
  log.enabled = false
  return { forComponent: () => log }
}

/**
 * A block store that reads every block from `gatewayUrl` through Helia's
 * trustless-gateway broker (an independent client of the spec), each block
 * checked against its CID before it is used. `fetched` counts the blocks.
 */
export function brokerStore (gatewayUrl: string): { get: (cid: CID, options?: { signal?: AbortSignal }) => AsyncGenerator<Uint8Array>, fetched: Set<string> } {
  const url = new URL(gatewayUrl)
  const routing = {
    async * findProviders () {
      yield { multiaddrs: [multiaddr(`/ip4/${url.hostname}/tcp/${url.port}/http`)], routing: 'test' }
    }
  }
  const broker = trustlessGateway({ allowLocal: true, allowInsecure: true })({ routing: routing as any, logger: silentLogger() })
  const fetched = new Set<string>()
  return {
    fetched,
    async * get (cid, options = {}) {
      const bytes = await broker.retrieve?.(cid, {
        signal: options.signal ?? AbortSignal.timeout(CALL_TIMEOUT_MS),
        validateFn: async (block: Uint8Array) => { verifyBlock(cid, block) }
      } as any)
      assert.ok(bytes !== undefined, `the broker returned ${cid.toString()}`)
      verifyBlock(cid, bytes)
      fetched.add(cid.toString())
      yield bytes
    }
  }
}

/** Concatenate an async iterable of bytes. */
export async function collect (source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const part of source) parts.push(part)
  return Buffer.concat(parts)
}

/** An answer read off a raw HTTP/1.1 connection. */
export interface RawAnswer { status: number, headers: Record<string, string>, body: Buffer }

/**
 * Send `head` (a request line and header lines, without the blank line
 * that ends them) as is to the gateway at `gatewayUrl` over a fresh TCP
 * connection, `Connection: close` added, and read the answer until the
 * gateway closes it: for requests `fetch` cannot send (an absolute-form
 * target, a `Host` of its own). The body is de-chunked.
 */
export async function rawRequest (gatewayUrl: string, head: string): Promise<RawAnswer> {
  const url = new URL(gatewayUrl)
  const bytes = await new Promise<Buffer>((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) })
    const parts: Buffer[] = []
    socket.setTimeout(CALL_TIMEOUT_MS, () => { socket.destroy(new Error(`no answer within ${CALL_TIMEOUT_MS} ms`)) })
    socket.on('data', (b: Buffer) => parts.push(b))
    socket.once('end', () => { resolve(Buffer.concat(parts)) })
    socket.once('error', reject)
    socket.write(`${head}\r\nConnection: close\r\n\r\n`)
  })
  const end = bytes.indexOf('\r\n\r\n')
  assert.ok(end > 0, `an HTTP answer: ${bytes.subarray(0, 200).toString('latin1')}`)
  const [statusLine, ...lines] = bytes.subarray(0, end).toString('latin1').split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const rest = bytes.subarray(end + 4)
  return { status: Number(statusLine.split(' ')[1]), headers, body: headers['transfer-encoding'] === 'chunked' ? dechunk(rest) : rest }
}

/** The body of a `Transfer-Encoding: chunked` message. */
function dechunk (bytes: Buffer): Buffer {
  const out: Buffer[] = []
  let at = 0
  while (at < bytes.length) {
    const eol = bytes.indexOf('\r\n', at)
    const size = parseInt(bytes.subarray(at, eol).toString('latin1'), 16)
    if (size === 0) break
    out.push(bytes.subarray(eol + 2, eol + 2 + size))
    at = eol + 2 + size + 2
  }
  return Buffer.concat(out)
}
