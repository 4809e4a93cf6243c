/**
 * Errors of the metrics modules.
 *
 * @module
 */
import { ShoalError } from '../errors.js'

/** A metric name registered again as another kind (a gauge asked for as a counter, a metric as a group). */
export class MetricKindError extends ShoalError {
  override name = 'MetricKindError'
}
