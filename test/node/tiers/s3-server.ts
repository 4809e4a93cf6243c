/**
 * A real S3 HTTP server (s3rver) on 127.0.0.1 for the tier's tests: a free
 * port, a temp directory, one bucket, stopped and removed when the test ends
 * (pass or fail).
 *
 * s3rver checks that a SigV4 request names a known access key (`S3RVER`)
 * but not its signature: a wrong access key is refused, a wrong secret is not.
 */
import { connect, createServer, type Socket } from 'node:net'
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
