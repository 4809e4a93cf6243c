/**
 * Errors of the gateway. Each has a `name` and the HTTP status it is
 * answered with; errors of the rest of the node (InvalidCIDError,
 * NotFoundError…) keep their own.
 *
 * @module
 */
import { ShoalError } from '../errors.js'

/** The configured gateway address is taken (another repo's daemon, another program). */
export class GatewayAddressInUseError extends ShoalError {
  override name = 'GatewayAddressInUseError'
}

/** A request target the gateway cannot take: an absolute URL of another scheme than http(s), with userinfo, or without a host. */
export class InvalidRequestTargetError extends ShoalError {
  override name = 'InvalidRequestTargetError'
  override readonly status = 400
}

/** A method other than GET or HEAD: the gateway is read-only. */
export class MethodNotAllowedError extends ShoalError {
  override name = 'MethodNotAllowedError'
  override readonly status = 405
}

/** A request for a response type the gateway does not produce (dag-json, tar, CARv2, `dups=y`…). */
export class NotAcceptableError extends ShoalError {
  override name = 'NotAcceptableError'
  override readonly status = 406
}

/** A `Range` that starts past the end of the file. */
export class RangeNotSatisfiableError extends ShoalError {
  override name = 'RangeNotSatisfiableError'
  override readonly status = 416
  /** Size of the file, for `Content-Range: bytes *\/size`. */
  readonly size: number

  constructor (message: string, size: number) {
    super(message)
    this.size = size
  }
}

/** No block of the content arrived within the retrieval timeout. */
export class GatewayTimeoutError extends ShoalError {
  override name = 'GatewayTimeoutError'
  override readonly status = 504
}

/** A request whose `Host` names something other than this machine, on a loopback gateway (DNS rebinding). */
export class ForbiddenHostError extends ShoalError {
  override name = 'ForbiddenHostError'
  override readonly status = 403
}

/** More content requests are under way than the gateway serves at once: try again shortly (503, with `Retry-After`). */
export class GatewayBusyError extends ShoalError {
  override name = 'GatewayBusyError'
  override readonly status = 503
}

/** A request a browser made for another site's page (`Sec-Fetch-Site: cross-site`): a page elsewhere may not read or embed the gateway's content. */
export class CrossSiteRequestError extends ShoalError {
  override name = 'CrossSiteRequestError'
  override readonly status = 403
}

/** `Cache-Control: only-if-cached` for content whose root block this node does not hold (412: it is not fetched). */
export class NotCachedError extends ShoalError {
  override name = 'NotCachedError'
  override readonly status = 412
}
