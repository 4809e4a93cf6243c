/**
 * Loopback ports a test can hold on to for longer than one bind.
 *
 * Why: a test that gives a daemon a fixed API port (`shoal init --api
 * 127.0.0.1:PORT`) and starts it several times must find that port free each
 * time. A port taken with `listen(0)` and closed again comes from the
 * kernel's ephemeral range, the same range every other test process draws
 * from when it listens on port 0 or dials out — so between the probe and
 * the daemon's bind, another test in the parallel run can get the very same
 * port (seen in CI: `ApiAddressInUseError` on a port that was free a moment
 * before).
 *
 * Mechanism: pick a random port below the ephemeral range
 * (`/proc/sys/net/ipv4/ip_local_port_range`), which the kernel never hands
 * out by itself, and check that it binds on 127.0.0.1. Only another test
 * that picks a fixed port the same way can collide, and the random choice
 * over thousands of ports makes that rare; the bind check rules out a port
 * already in use.
 *
 * Applies to tests on Linux, where that file exists; elsewhere the range
 * defaults to the IANA one (49152–65535).
 */
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'

/** The lowest port of the kernel's ephemeral range. */
function ephemeralLow (): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
    if (Number.isInteger(low) && low > 2048) return low
  } catch {}
  return 49152
}

/** Whether `port` binds on 127.0.0.1 now. */
async function binds (port: number): Promise<boolean> {
  const server = createServer()
  return await new Promise<boolean>(resolve => {
    server.once('error', () => { resolve(false) })
    server.listen(port, '127.0.0.1', () => { server.close(() => { resolve(true) }) })
  })
}

/**
 * A free 127.0.0.1 port outside the kernel's ephemeral range: no process
 * gets it by listening on port 0 or by dialling out, so it stays free for a
 * daemon that binds it later (and again after a restart).
 */
export async function unusedPort (): Promise<number> {
  const high = ephemeralLow() - 1
  const low = Math.max(1024, high - 20_000)
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low + 1))
    if (await binds(port)) return port
  }
  throw new Error(`no free port in ${low}–${high} after 100 tries`)
}
