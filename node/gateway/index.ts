/**
 * The read-only IPFS gateway: `/ipfs/{cid}[/path]` as raw blocks, CARs
 * (the trustless-gateway spec) and deserialized files and directories, on
 * its own listener; see docs/gateway.md.
 *
 * @module
 */
export { createGatewayServer, DEFAULT_RETRIEVAL_TIMEOUT_MS, DEFAULT_MAX_CONCURRENT_REQUESTS, DEFAULT_WRITE_IDLE_TIMEOUT_MS, type GatewayComponents, type GatewayServer, type GatewayServerInit } from './server.js'
export { parseGatewaySetting, gatewayUrl, readGatewayUrl, isLoopbackHost, DEFAULT_GATEWAY, GATEWAY_OFF, type GatewaySetting } from './address.js'
export { GatewayAddressInUseError, MethodNotAllowedError, NotAcceptableError, RangeNotSatisfiableError, GatewayTimeoutError, ForbiddenHostError, GatewayBusyError, CrossSiteRequestError, InvalidRequestTargetError } from './errors.js'
export { PinIndex, type PinSource } from '../reads/pin-index.js'
