/**
 * A real S3 HTTP server (s3rver) on 127.0.0.1 for the tier's tests: a free
 * port, a temp directory, one bucket, stopped and removed when the test ends
 * (pass or fail).
 *
 * s3rver checks that a SigV4 request names a known access key (`S3RVER`)
 * but not its signature: a wrong access key is refused, a wrong secret is not.
 */
import { connect, createServer, type Socket } from 'node:net'
import { createServer as createHttpServer, request as httpRequest } from 'node:http'
import S3rver from 's3rver'
import { defer, tempDir, type CleanupContext } from '../../helpers/temp.js'
import { unusedPort } from '../../helpers/ports.js'

/** The access key and secret s3rver accepts. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }

/** Environment of a daemon that talks to the test server: its credentials, and none of this machine's AWS files. */
export const S3RVER_ENV = {
  AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
  AWS_CONFIG_FILE: '/nonexistent'
}

/**
 * Give this process the credentials s3rver accepts (the SDK's default chain
 * reads them from the environment: the tier is never handed credentials);
 * the environment is put back when `t` ends.
 */
export function useS3rverCredentials (t: CleanupContext): void {
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY }
  process.env.AWS_ACCESS_KEY_ID = S3RVER_CREDENTIALS.accessKeyId
  process.env.AWS_SECRET_ACCESS_KEY = S3RVER_CREDENTIALS.secretAccessKey
  defer(t, async () => {
    if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID
    else process.env.AWS_ACCESS_KEY_ID = saved.id
    if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY
    else process.env.AWS_SECRET_ACCESS_KEY = saved.secret
  })
}

/** A running s3rver. */
export interface TestS3Server {
  /** `http://127.0.0.1:PORT` */
  endpoint: string
  /** The bucket created at start. */
  bucket: string
  /** Stop the server now (a tier that went down); stopping twice is harmless. */
  stop: () => Promise<void>
}

/** Start s3rver on a free loopback port with `bucket`; it stops when `t` ends. */
export async function startS3Server (t: CleanupContext, bucket = 'shoal-test'): Promise<TestS3Server> {
  const directory = await tempDir(t, 'shoal-s3rver-')
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket }] })
  const address = await server.run()
  let closing: Promise<void> | undefined
  const stop = async (): Promise<void> => { closing ??= server.close(); await closing }
  defer(t, stop)
  return { endpoint: `http://127.0.0.1:${address.port}`, bucket, stop }
}

/** A loopback port nothing listens on (outside the ephemeral range, so no other test gets it by chance). */
export async function closedPort (): Promise<number> {
  return await unusedPort()
}

/** A TCP relay in front of the server that can drop one connection mid-answer. */
export interface CuttingProxy {
  /** `http://127.0.0.1:PORT` of the relay. */
  endpoint: string
  /** Drop the next connection that has relayed more than `bytes` bytes of answer. */
  cutAfter: (bytes: number) => void
  /** Connections dropped so far. */
  cuts: () => number
}

/**
 * Relay 127.0.0.1 TCP connections to `target` (a real network fault, not a
 * mock: the client sees a connection reset in the middle of a body). Closed
 * when `t` ends.
 */
export async function startCuttingProxy (t: CleanupContext, target: string): Promise<CuttingProxy> {
  const { port: targetPort } = new URL(target)
  let threshold: number | undefined
  let cuts = 0
  const sockets = new Set<Socket>()
  const server = createServer(client => {
    const upstream = connect(Number(targetPort), '127.0.0.1')
    sockets.add(client).add(upstream)
    let relayed = 0
    const drop = (): void => { client.destroy(); upstream.destroy() }
    client.on('data', chunk => upstream.write(chunk))
    upstream.on('data', (chunk: Buffer) => {
      relayed += chunk.byteLength
      if (threshold !== undefined && relayed > threshold) {
        threshold = undefined
        cuts++
        drop()
        return
      }
      client.write(chunk)
    })
    client.on('close', drop).on('error', drop)
    upstream.on('close', drop).on('error', drop)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  defer(t, async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise<void>(resolve => server.close(() => resolve()))
  })
  const { port } = server.address() as { port: number }
  return { endpoint: `http://127.0.0.1:${port}`, cutAfter: bytes => { threshold = bytes }, cuts: () => cuts }
}

/** What a {@link TrafficProxy} has relayed so far. */
export interface ProxyTraffic {
  /** GET requests received. */
  gets: number
  /** Bytes of answer bodies relayed to clients. */
  bytes: number
  /** Answers under way: received, neither finished nor cut yet. */
  open: number
  /** Answers with bytes held back (see `holdFrom`): none of them can finish before `release`. */
  held: number
  /** Answers whose client went away before their end (a cancelled request). */
  cut: number
}

/** An HTTP relay in front of the server that counts what it serves and can hold answers back. */
export interface TrafficProxy {
  /** `http://127.0.0.1:PORT` of the relay. */
  endpoint: string
  /** Counters so far (a copy). */
  traffic: () => ProxyTraffic
  /**
   * Hold back every byte of an object at or past offset `byte` (of a ranged
   * GET: its `Range` start plus what was relayed; of any other answer: its
   * body offset), in answers under way and later ones, until `release`.
   */
  holdFrom: (byte: number) => void
  /** Relay what was held, and hold nothing any more. */
  release: () => void
}

interface Relay {
  at: number
  queue: Buffer[]
  ended: boolean
  resume: () => void
  end: () => void
}

/**
 * Relay 127.0.0.1 HTTP requests to `target` (s3rver), counting GETs, body
 * bytes relayed, answers cut by their client, and holding answers back on
 * demand: a real network path whose traffic a test can measure, not a mock.
 * Closed when `t` ends.
 */
export async function startTrafficProxy (t: CleanupContext, target: string): Promise<TrafficProxy> {
  const { port: targetPort } = new URL(target)
  const counts: ProxyTraffic = { gets: 0, bytes: 0, open: 0, held: 0, cut: 0 }
  const held = new Set<Relay>()
  let holdAt: number | undefined
  const server = createHttpServer((req, res) => {
    counts.open++
    if (req.method === 'GET') counts.gets++
    let done = false
    const upstream = httpRequest({ host: '127.0.0.1', port: Number(targetPort), method: req.method, path: req.url, headers: req.headers }, answer => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      const range = /^bytes=(\d+)-/.exec(String(req.headers.range ?? ''))
      const relay: Relay = {
        at: range === null ? 0 : Number(range[1]),
        queue: [],
        ended: false,
        resume: () => { for (const chunk of relay.queue.splice(0)) write(chunk); if (relay.ended) res.end(); else answer.resume() },
        end: () => { relay.ended = true; if (!held.has(relay)) res.end() }
      }
      const write = (chunk: Buffer): void => {
        if (chunk.byteLength === 0) return
        counts.bytes += chunk.byteLength
        relay.at += chunk.byteLength
        res.write(chunk)
      }
      answer.on('data', (chunk: Buffer) => {
        if (held.has(relay)) { relay.queue.push(chunk); return }
        const room = holdAt === undefined ? chunk.byteLength : Math.max(0, holdAt - relay.at)
        if (room >= chunk.byteLength) { write(chunk); return }
        write(chunk.subarray(0, room))
        relay.queue.push(chunk.subarray(room))
        held.add(relay)
        answer.pause()
      })
      answer.on('end', relay.end)
      answer.on('error', () => { res.destroy() })
      res.once('close', () => { held.delete(relay) })
    })
    upstream.on('error', () => { res.destroy() })
    req.pipe(upstream)
    res.once('close', () => {
      if (done) return
      done = true
      counts.open--
      if (!res.writableFinished) {
        counts.cut++
        upstream.destroy()
      }
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  defer(t, async () => {
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => resolve()))
  })
  const { port } = server.address() as { port: number }
  return {
    endpoint: `http://127.0.0.1:${port}`,
    traffic: () => ({ ...counts, held: held.size }),
    holdFrom: byte => { holdAt = byte },
    release: () => {
      holdAt = undefined
      const relays = [...held]
      held.clear()
      for (const relay of relays) relay.resume()
    }
  }
}
