/**
 * libp2p's own metrics — connections, streams per protocol, bytes per
 * protocol, the DHT, TCP, noise — on one node's Prometheus registry.
 *
 * Why not `@libp2p/prometheus-metrics` as it is: that package keeps every
 * metric it makes in one map for the whole process, by name, and hands the
 * existing object back when a name is registered again. With two libp2p
 * nodes in one process (tests, simulations, benches) the second node's
 * connection-manager and TCP-listener metrics were the first node's objects:
 * registered on the first node's registry, counting the second node's
 * events there, missing from the second node's `/metrics` (measured: seven
 * families). And unless told otherwise it clears prom-client's global
 * registry each time a node is made. libp2p's `Metrics` interface is small,
 * so this module implements it on prom-client the way that package does
 * (same metric names, same label defaults), with one map per node.
 *
 * Mechanism: libp2p's components register their metrics through the
 * interface; a name is one family per node, of one kind (registering it as
 * another kind throws). A calculated metric is read at scrape time: a name
 * registered with a calculation more than once (each TCP listener registers
 * `libp2p_tcp_inbound_connections_total`) keeps every calculation, and the
 * scrape adds their results up, key by key for a group; a calculation that
 * throws leaves its family out of that scrape and is counted in
 * `shoal_metrics_collect_errors_total` (collect-errors.ts). Bytes are counted
 * where libp2p hands over a stream once its protocol is negotiated
 * (`trackProtocolStream`) and a raw connection once it is accepted or dialled
 * (`trackMultiaddrConnection`, counted as `protocol="global"`: encrypted
 * bytes with the muxer's framing, what the network sees): the stream's
 * `send`, `dispatchEvent` and `unshift` (bytes handed back unread, which
 * come out again as a message) are wrapped — no `message` listener is added,
 * which would make the stream hand out data before its protocol handler
 * listens — and add to the totals of their protocol, an object found once
 * per stream, so a message costs an addition (no map look-up, no string
 * built). `libp2p_data_transfer_bytes_total` reads the totals at scrape time,
 * labelled as libp2p labels it — `protocol="/shoal/blocks/1.0.0 sent"`,
 * `protocol="global received"` — so dashboards made for js-libp2p and the
 * status page read it unchanged.
 *
 * When it applies: the node's libp2p gets it when the config's
 * `metrics.libp2p` is true (the default; see docs/api.md, "Metrics").
 *
 * @module
 */
import { Counter, Gauge, Histogram, Summary, type Registry } from 'prom-client'
import { collectGuard } from './collect-errors.js'
import { MetricKindError } from './errors.js'
import type {
  CalculatedHistogramOptions, CalculatedMetricOptions, CalculatedSummaryOptions, Counter as Libp2pCounter, CounterGroup, Histogram as Libp2pHistogram,
  HistogramGroup, HistogramOptions, Metric, MetricGroup, MetricOptions, Metrics, MultiaddrConnection, Stream, StopTimer, Summary as Libp2pSummary, SummaryGroup, SummaryOptions
} from '@libp2p/interface'

/** What {@link libp2pMetrics} needs. */
export interface Libp2pMetricsInit {
  /** The node's registry: every libp2p metric of the node goes there, and only there. */
  registry: Registry
}

/** The `metrics` option of `createLibp2p`: builds the metrics of one libp2p node. */
export type Libp2pMetricsFactory = (components: unknown) => Metrics

/** Protocol name of the bytes counted on raw connections (all protocols, encrypted, with framing). */
export const ALL_PROTOCOLS = 'global'

/** The `protocol` label of the bytes of `protocol` going `direction` (libp2p's form: the protocol, a space, the direction). */
export function transferLabel (protocol: string, direction: 'sent' | 'received'): string {
  return `${protocol} ${direction}`
}

/** Name of the per-protocol byte counter (libp2p's own name). */
export const TRANSFER_METRIC = 'libp2p_data_transfer_bytes_total'

/** libp2p's metrics on `init.registry`, for `createLibp2p({ metrics })`. */
export function libp2pMetrics (init: Libp2pMetricsInit): Libp2pMetricsFactory {
  return () => new RegistryMetrics(init.registry)
}

/** Bytes of one protocol since the node started. */
interface Totals { sent: number, received: number }

/** The parts of a libp2p message stream that are wrapped to count bytes. */
interface CountedStream {
  send: (data: { byteLength: number }) => boolean
  dispatchEvent: (evt: Event) => boolean
  unshift?: (data: { byteLength: number }) => void
}

const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const DEFAULT_PERCENTILES = [0.01, 0.05, 0.5, 0.9, 0.95, 0.99, 0.999]

/** Prometheus rules for names: `[a-zA-Z0-9_]`, no runs of `_`. */
function normalize (text: string): string {
  return text.replace(/[^a-zA-Z0-9_]/g, '_').replace(/_+/g, '_')
}

type Calculate<T> = () => T | Promise<T>

/** libp2p's `Metrics` on one registry; each name is one family per node, with all its calculations. */
class RegistryMetrics implements Metrics {
  private readonly families = new Map<string, Family>()
  private readonly transfer = new Map<string, Totals>()

  constructor (private readonly registry: Registry) {
    const transfer = this.transfer
    // eslint-disable-next-line no-new
    new Counter({
      name: TRANSFER_METRIC,
      help: 'Bytes per libp2p protocol and direction (stream payloads), labelled "<protocol> sent" or "<protocol> received"; "global sent|received": all bytes on connections, encrypted, with framing',
      labelNames: ['protocol'],
      registers: [registry],
      collect () {
        this.reset()
        for (const [protocol, t] of transfer) {
          this.inc({ protocol: transferLabel(protocol, 'sent') }, t.sent)
          this.inc({ protocol: transferLabel(protocol, 'received') }, t.received)
        }
      }
    })
  }

  readonly [Symbol.toStringTag] = '@shoal/libp2p-metrics'

  trackMultiaddrConnection (maConn: MultiaddrConnection): void {
    this.count(maConn as unknown as CountedStream, ALL_PROTOCOLS)
  }

  trackProtocolStream (stream: Stream): void {
    // libp2p calls this once the protocol is negotiated; without one there is nothing to file it under
    if (stream.protocol == null || stream.protocol === '') return
    this.count(stream as unknown as CountedStream, stream.protocol)
  }

  private count (stream: CountedStream, protocol: string): void {
    // bounded: a protocol is one this node handles or opens, never any name a peer sends
    let totals = this.transfer.get(protocol)
    if (totals === undefined) {
      totals = { sent: 0, received: 0 }
      this.transfer.set(protocol, totals)
    }
    const t = totals
    const send = stream.send.bind(stream)
    stream.send = data => {
      t.sent += data.byteLength
      return send(data)
    }
    const dispatch = stream.dispatchEvent.bind(stream)
    stream.dispatchEvent = evt => {
      if (evt.type === 'message') t.received += (evt as Event & { data: { byteLength: number } }).data.byteLength
      return dispatch(evt)
    }
    // bytes handed back unread (a byte stream unwrapped after noise's handshake
    // or a protocol's own framing) come out again as a message: counted once
    if (typeof stream.unshift === 'function') {
      const unshift = stream.unshift.bind(stream)
      stream.unshift = data => {
        unshift(data)
        t.received -= data.byteLength
      }
    }
  }

  registerMetric (name: string, options: MetricOptions | CalculatedMetricOptions = {}): any {
    return this.once(name, 'gauge', options, family => {
      const gauge = this.make('gauge', name, family, options) as Gauge
      return {
        update: (value: number) => { gauge.set(value) },
        increment: (value = 1) => { gauge.inc(value) },
        decrement: (value = 1) => { gauge.dec(value) },
        reset: () => { gauge.reset() },
        timer: (): StopTimer => gauge.startTimer()
      } satisfies Metric
    })
  }

  registerMetricGroup (name: string, options: MetricOptions | CalculatedMetricOptions<Record<string, number>> = {}): any {
    return this.once(name, 'gauge group', options, family => {
      const label = labelOf(name, options)
      const gauge = this.make('gauge', name, family, options, label) as Gauge
      return {
        update: values => { for (const [key, value] of Object.entries(values)) gauge.set({ [label]: key }, value as number) },
        increment: values => { for (const [key, value] of Object.entries(values)) gauge.inc({ [label]: key }, typeof value === 'number' ? value : 1) },
        decrement: values => { for (const [key, value] of Object.entries(values)) gauge.dec({ [label]: key }, typeof value === 'number' ? value : 1) },
        reset: () => { gauge.reset() },
        timer: (key: string): StopTimer => gauge.startTimer({ [label]: key })
      } satisfies MetricGroup
    })
  }

  registerCounter (name: string, options: MetricOptions | CalculatedMetricOptions = {}): any {
    return this.once(name, 'counter', options, family => {
      const counter = this.make('counter', name, family, options) as Counter
      return {
        increment: (value = 1) => { counter.inc(value) },
        reset: () => { counter.reset() }
      } satisfies Libp2pCounter
    })
  }

  registerCounterGroup (name: string, options: MetricOptions | CalculatedMetricOptions<Record<string, number>> = {}): any {
    return this.once(name, 'counter group', options, family => {
      const label = labelOf(name, options)
      const counter = this.make('counter', name, family, options, label) as Counter
      return {
        increment: values => { for (const [key, value] of Object.entries(values)) counter.inc({ [label]: key }, typeof value === 'number' ? value : 1) },
        reset: () => { counter.reset() }
      } satisfies CounterGroup
    })
  }

  registerHistogram (name: string, options: HistogramOptions | CalculatedHistogramOptions = {}): any {
    return this.once(name, 'histogram', options, family => observer(this.make('histogram', name, family, options) as Histogram))
  }

  registerHistogramGroup (name: string, options: HistogramOptions | CalculatedHistogramOptions<Record<string, number>> = {}): any {
    return this.once(name, 'histogram group', options, family => observerGroup(this.make('histogram', name, family, options, labelOf(name, options)) as Histogram, labelOf(name, options)))
  }

  registerSummary (name: string, options: SummaryOptions | CalculatedSummaryOptions = {}): any {
    return this.once(name, 'summary', options, family => observer(this.make('summary', name, family, options) as Summary))
  }

  registerSummaryGroup (name: string, options: SummaryOptions | CalculatedSummaryOptions<Record<string, number>> = {}): any {
    return this.once(name, 'summary group', options, family => observerGroup(this.make('summary', name, family, options, labelOf(name, options)) as Summary, labelOf(name, options)))
  }

  createTrace (): undefined {
    return undefined
  }

  traceFunction<F extends (...args: any[]) => any> (_name: string, fn: F): F {
    return fn
  }

  /**
   * The metric `name` of this node, made by `make` the first time; a
   * calculated one is not handed out (libp2p's contract). A name registered
   * again with a calculation adds that calculation to the family's list (two
   * TCP listeners each register `libp2p_tcp_inbound_connections_total` with
   * their own): all of them run at scrape time.
   *
   * @throws {MetricKindError} when `name` exists as another kind of metric
   */
  private once (name: string, shape: Shape, options: MetricOptions & { calculate?: unknown }, make: (family: Family) => unknown): unknown {
    if (name.trim() === '') throw new TypeError('a libp2p metric needs a name')
    const key = normalize(name)
    let family = this.families.get(key)
    if (family === undefined) {
      family = { shape, calculations: [], wrapper: undefined }
      family.wrapper = make(family)
      this.families.set(key, family)
    } else if (family.shape !== shape) {
      throw new MetricKindError(`libp2p metric ${key} is a ${family.shape}, not a ${shape}`)
    }
    const calculate = calculated<number | Record<string, number>>(options)
    if (calculate !== undefined) family.calculations.push(calculate)
    return calculate === undefined ? family.wrapper : undefined
  }

  /**
   * The prom-client metric of `kind` behind a libp2p metric, on this node's
   * registry, labelled by `label` for a group. Its calculations, if any, run
   * at scrape time, their results merged: numbers of the same key added up
   * (for a gauge or a counter), each one observed (a histogram or summary,
   * as libp2p's own implementation does). A calculated gauge is cleared
   * first: what it says is the state now, so a label the calculation no
   * longer returns (streams of a protocol all closed) goes. A calculated
   * counter is cleared too: the calculation gives the running total, which
   * is set, not added again at each scrape. A calculation that throws
   * clears the family for that scrape and is counted
   * (`shoal_metrics_collect_errors_total`); the rest of the scrape is served.
   */
  private make (kind: Kind, name: string, family: Family, options: MetricOptions & HistogramOptions & SummaryOptions, label?: string): PromMetric {
    const guard = collectGuard(this.registry)
    const metricName = normalize(name)
    const config = {
      name: metricName,
      help: options.help ?? name,
      labelNames: label === undefined ? [] : [label],
      registers: [this.registry],
      async collect (this: PromMetric) {
        if (family.calculations.length === 0) return
        await guard.run(metricName, this, async () => {
          const values = await Promise.all(family.calculations.map(async calculate => await calculate()))
          if (kind === 'gauge' || kind === 'counter') {
            const merged = merge(values, label)
            this.reset()
            for (const [labels, value] of merged) APPLY[kind](this, labels, value)
          } else {
            for (const value of values) {
              if (typeof value === 'number') APPLY[kind](this, {}, value)
              else if (label !== undefined) for (const [key, v] of Object.entries(value)) APPLY[kind](this, { [label]: key }, v)
            }
          }
        })
      }
    }
    switch (kind) {
      case 'gauge': return new Gauge(config)
      case 'counter': return new Counter(config)
      case 'histogram': return new Histogram({ ...config, buckets: options.buckets ?? DEFAULT_BUCKETS })
      case 'summary': return new Summary({ ...config, ...summaryOptions(options) })
    }
  }
}

/** One libp2p metric family of a node: its kind, its calculations, what libp2p was handed. */
interface Family {
  shape: Shape
  calculations: Array<Calculate<number | Record<string, number>>>
  wrapper: unknown
}

type PromMetric = Gauge | Counter | Histogram | Summary

/**
 * The results of a family's calculations as one set of samples: numbers
 * added up, groups merged key by key (a key in two groups adds up too).
 */
export function merge (values: Array<number | Record<string, number>>, label: string | undefined): Map<Record<string, string>, number> {
  let total: number | undefined
  const byKey = new Map<string, number>()
  for (const value of values) {
    if (typeof value === 'number') total = (total ?? 0) + value
    else if (label !== undefined) for (const [key, v] of Object.entries(value)) byKey.set(key, (byKey.get(key) ?? 0) + v)
  }
  const out = new Map<Record<string, string>, number>()
  if (total !== undefined) out.set({}, total)
  for (const [key, v] of byKey) out.set({ [label as string]: key }, v)
  return out
}

/** The prom-client metric types behind libp2p's. */
type Kind = 'gauge' | 'counter' | 'histogram' | 'summary'

/** A libp2p metric's kind, and whether it is a group (a name is one of them, for good). */
type Shape = Kind | `${Kind} group`

/** How a calculated value is applied at scrape time, by kind. */
const APPLY: Record<Kind, (metric: any, labels: Record<string, string>, value: number) => void> = {
  gauge: (metric: Gauge, labels, value) => { metric.set(labels, value) },
  counter: (metric: Counter, labels, value) => { metric.inc(labels, value) }, // after a reset: the running total
  histogram: (metric: Histogram, labels, value) => { metric.observe(labels, value) },
  summary: (metric: Summary, labels, value) => { metric.observe(labels, value) }
}

/** A group's label: the one given, else the metric's name (libp2p's default). */
function labelOf (name: string, options: MetricOptions): string {
  return normalize(options.label ?? name)
}

/** libp2p's histogram or summary over a prom-client one. */
function observer (metric: Histogram | Summary): Libp2pHistogram & Libp2pSummary {
  return {
    observe: (value: number) => { metric.observe(value) },
    reset: () => { metric.reset() },
    timer: (): StopTimer => metric.startTimer()
  }
}

/** libp2p's histogram or summary group over a labelled prom-client one. */
function observerGroup (metric: Histogram | Summary, label: string): HistogramGroup & SummaryGroup {
  return {
    observe: values => { for (const [key, value] of Object.entries(values)) metric.observe({ [label]: key }, value as number) },
    reset: () => { metric.reset() },
    timer: (key: string): StopTimer => metric.startTimer({ [label]: key })
  }
}

/** The `calculate` of a calculated metric's options, if they have one. */
function calculated<T> (options: object): Calculate<T> | undefined {
  return 'calculate' in options ? options.calculate as Calculate<T> : undefined
}

function summaryOptions (options: SummaryOptions): { percentiles: number[], maxAgeSeconds?: number, ageBuckets?: number, pruneAgedBuckets?: boolean, compressCount: number } {
  return {
    percentiles: options.percentiles ?? DEFAULT_PERCENTILES,
    ...(options.maxAgeSeconds !== undefined ? { maxAgeSeconds: options.maxAgeSeconds } : {}),
    ...(options.ageBuckets !== undefined ? { ageBuckets: options.ageBuckets } : {}),
    ...(options.pruneAgedBuckets !== undefined ? { pruneAgedBuckets: options.pruneAgedBuckets } : {}),
    compressCount: options.compressCount ?? 1000
  }
}
