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
 * interface (a calculated one is read at scrape time). Bytes are counted
 * where libp2p hands over a stream once its protocol is negotiated
 * (`trackProtocolStream`) and a raw connection once it is accepted or dialled
 * (`trackMultiaddrConnection`, counted as `protocol="global"`: encrypted
 * bytes with the muxer's framing, what the network sees): the stream's
 * `send` and `dispatchEvent` are wrapped — no `message` listener is added,
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
}

const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const DEFAULT_PERCENTILES = [0.01, 0.05, 0.5, 0.9, 0.95, 0.99, 0.999]

/** Prometheus rules for names: `[a-zA-Z0-9_]`, no runs of `_`. */
function normalize (text: string): string {
  return text.replace(/[^a-zA-Z0-9_]/g, '_').replace(/_+/g, '_')
}

type Calculate<T> = () => T | Promise<T>

/** libp2p's `Metrics` on one registry; each name is made once per node. */
class RegistryMetrics implements Metrics {
  private readonly families = new Map<string, unknown>()
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
  }

  registerMetric (name: string, options: MetricOptions | CalculatedMetricOptions = {}): any {
    return this.once(name, options, () => {
      const gauge = this.make('gauge', name, options) as Gauge
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
    return this.once(name, options, () => {
      const label = labelOf(name, options)
      const gauge = this.make('gauge', name, options, label) as Gauge
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
    return this.once(name, options, () => {
      const counter = this.make('counter', name, options) as Counter
      return {
        increment: (value = 1) => { counter.inc(value) },
        reset: () => { counter.reset() }
      } satisfies Libp2pCounter
    })
  }

  registerCounterGroup (name: string, options: MetricOptions | CalculatedMetricOptions<Record<string, number>> = {}): any {
    return this.once(name, options, () => {
      const label = labelOf(name, options)
      const counter = this.make('counter', name, options, label) as Counter
      return {
        increment: values => { for (const [key, value] of Object.entries(values)) counter.inc({ [label]: key }, typeof value === 'number' ? value : 1) },
        reset: () => { counter.reset() }
      } satisfies CounterGroup
    })
  }

  registerHistogram (name: string, options: HistogramOptions | CalculatedHistogramOptions = {}): any {
    return this.once(name, options, () => observer(this.make('histogram', name, options) as Histogram))
  }

  registerHistogramGroup (name: string, options: HistogramOptions | CalculatedHistogramOptions<Record<string, number>> = {}): any {
    return this.once(name, options, () => observerGroup(this.make('histogram', name, options, labelOf(name, options)) as Histogram, labelOf(name, options)))
  }

  registerSummary (name: string, options: SummaryOptions | CalculatedSummaryOptions = {}): any {
    return this.once(name, options, () => observer(this.make('summary', name, options) as Summary))
  }

  registerSummaryGroup (name: string, options: SummaryOptions | CalculatedSummaryOptions<Record<string, number>> = {}): any {
    return this.once(name, options, () => observerGroup(this.make('summary', name, options, labelOf(name, options)) as Summary, labelOf(name, options)))
  }

  createTrace (): undefined {
    return undefined
  }

  traceFunction<F extends (...args: any[]) => any> (_name: string, fn: F): F {
    return fn
  }

  /** The metric `name` of this node, made by `make` the first time; a calculated one is not handed out (libp2p's contract). */
  private once (name: string, options: MetricOptions & { calculate?: unknown }, make: () => unknown): unknown {
    if (name.trim() === '') throw new TypeError('a libp2p metric needs a name')
    const key = normalize(name)
    let metric = this.families.get(key)
    if (metric === undefined) {
      metric = make()
      this.families.set(key, metric)
    }
    return options.calculate == null ? metric : undefined
  }

  /**
   * The prom-client metric of `kind` behind a libp2p metric, on this node's
   * registry: labelled by `label` for a group; a calculated one is read at
   * scrape time (a gauge set, a counter added to, a histogram or summary
   * observed, as libp2p's own implementation does). A calculated gauge is
   * cleared first: what it says is the state now, so a label the
   * calculation no longer returns (streams of a protocol all closed) goes.
   */
  private make (kind: Kind, name: string, options: MetricOptions & HistogramOptions & SummaryOptions, label?: string): Gauge | Counter | Histogram | Summary {
    const calculate = calculated<number | Record<string, number>>(options)
    const apply = APPLY[kind]
    const config = {
      name: normalize(name),
      help: options.help ?? name,
      labelNames: label === undefined ? [] : [label],
      registers: [this.registry],
      ...(calculate === undefined
        ? {}
        : {
            async collect (this: Gauge | Counter | Histogram | Summary) {
              const value = await calculate()
              if (kind === 'gauge') this.reset()
              if (typeof value === 'number') apply(this, {}, value)
              else if (label !== undefined) for (const [key, v] of Object.entries(value)) apply(this, { [label]: key }, v)
            }
          })
    }
    switch (kind) {
      case 'gauge': return new Gauge(config)
      case 'counter': return new Counter(config)
      case 'histogram': return new Histogram({ ...config, buckets: options.buckets ?? DEFAULT_BUCKETS })
      case 'summary': return new Summary({ ...config, ...summaryOptions(options) })
    }
  }
}

/** The prom-client metric types behind libp2p's. */
type Kind = 'gauge' | 'counter' | 'histogram' | 'summary'

/** How a calculated value is applied at scrape time, by kind. */
const APPLY: Record<Kind, (metric: any, labels: Record<string, string>, value: number) => void> = {
  gauge: (metric: Gauge, labels, value) => { metric.set(labels, value) },
  counter: (metric: Counter, labels, value) => { metric.inc(labels, value) },
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
