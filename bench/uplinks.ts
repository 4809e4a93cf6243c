/**
 * Uplinks of a given rate for daemons that all run on 127.0.0.1.
 *
 * Why: on loopback every peer sends as fast as the machine's cores let it,
 * so a read from several holders at once can be no faster than a read from
 * one: the reader's CPU bounds both. On a real network each holder's uplink
 * is a bound of its own, and reading a file's stripes from k holders at once
 * is what lets a reader go past it. This makes that bound real on one
 * machine, so that a benchmark can measure what parallel holders give.
 *
 * How: Linux traffic control on `lo`. An HTB root whose unclassified
 * traffic passes unshaped (the API, the CLI's output, every other
 * connection), and one HTB class of the given rate per sending process,
 * which u32 filters fill with that process's packets on each established TCP
 * connection it has with the receiving process (found with `ss -tnp`, by
 * pid, in both directions of dialling). Connections opened later are not
 * shaped: {@link Uplinks.unshaped} counts them, for the benchmark to report.
 *
 * When it applies: benchmarks only, run as root on Linux with `tc` and `ss`
 * (iproute2) and a kernel with HTB and the u32 classifier; it throws
 * {@link UplinkSetupError} otherwise, having changed nothing. One shaping
 * at a time per machine: it replaces `lo`'s root qdisc, and restores the
 * default (none) when removed, at exit included.
 *
 * @module
 */
import { spawnSync } from 'node:child_process'
import { exitHooks } from './harness.js'

/** Shaping could not be set up (no root, no `tc`, a kernel without HTB). Nothing was changed. */
export class UplinkSetupError extends Error {
  override name = 'UplinkSetupError'
}

/** What {@link shapeUplinks} set up. */
export interface Uplinks {
  /** Connections shaped, per sender (in the order given). */
  readonly shaped: readonly number[]
  /** Established connections between a sender and the receiver that are not shaped (opened since). */
  unshaped: () => number
  /** Take the shaping away (also done at exit). */
  remove: () => void
}

/** One established TCP connection end: its local and remote ports, and the pid that holds it. */
interface SocketEnd { local: number, remote: number, pid: number }

function run (cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  if (r.error !== undefined) throw new UplinkSetupError(`${cmd}: ${r.error.message} (iproute2 is needed)`)
  if (r.status !== 0) throw new UplinkSetupError(`${cmd} ${args.join(' ')}: ${r.stderr.trim() || `exit ${String(r.status)}`} (root and a kernel with HTB and u32 are needed)`)
  return r.stdout
}

/** Established TCP connections on 127.0.0.1 and the pids holding them. */
function socketEnds (): SocketEnd[] {
  const ends: SocketEnd[] = []
  for (const line of run('ss', ['-tnpH', 'state', 'established']).split('\n')) {
    const addrs = [...line.matchAll(/127\.0\.0\.1:(\d+)/g)].map(m => Number(m[1]))
    const pid = /pid=(\d+)/.exec(line)
    if (addrs.length === 2 && pid !== null) ends.push({ local: addrs[0], remote: addrs[1], pid: Number(pid[1]) })
  }
  return ends
}

/** The connections from each sender to `receiver`, as (sender's port, receiver's port). */
function linksOf (senders: readonly number[], receiver: number): Array<Array<{ from: number, to: number }>> {
  const ends = socketEnds()
  const pidOfPort = new Map(ends.map(e => [e.local, e.pid]))
  return senders.map(sender => ends
    .filter(e => e.pid === sender && pidOfPort.get(e.remote) === receiver)
    .map(e => ({ from: e.local, to: e.remote })))
}

/**
 * Give each of `senders` (pids) an uplink of `mbps` MB/s (10^6 bytes) for
 * what it sends `receiver` (a pid) on the connections they have now.
 */
export function shapeUplinks (options: { senders: readonly number[], receiver: number, mbps: number }): Uplinks {
  const { senders, receiver, mbps } = options
  if (!(mbps > 0) || senders.length === 0 || senders.length > 200) throw new UplinkSetupError('an uplink needs a rate above 0 and 1 to 200 senders')
  const links = linksOf(senders, receiver)
  run('tc', ['qdisc', 'replace', 'dev', 'lo', 'root', 'handle', '1:', 'htb'])
  let removed = false
  const remove = (): void => {
    if (removed) return
    removed = true
    exitHooks.delete(remove)
    spawnSync('tc', ['qdisc', 'del', 'dev', 'lo', 'root'])
  }
  exitHooks.add(remove)
  try {
    const rate = `${Math.round(mbps * 8e6)}bit`
    senders.forEach((_, i) => {
      const classid = `1:${(i + 16).toString(16)}`
      // loopback packets are up to 64 KiB (GSO): the bucket holds a few of them
      run('tc', ['class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', classid, 'htb', 'rate', rate, 'ceil', rate, 'burst', '256k', 'cburst', '256k'])
      for (const { from, to } of links[i]) {
        run('tc', ['filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', 'sport', String(from), '0xffff', 'match', 'ip', 'dport', String(to), '0xffff', 'flowid', classid])
      }
    })
  } catch (err) {
    remove()
    throw err
  }
  const shapedPorts = new Set(links.flat().map(l => l.from))
  return {
    shaped: links.map(l => l.length),
    unshaped: () => linksOf(senders, receiver).flat().filter(l => !shapedPorts.has(l.from)).length,
    remove
  }
}
