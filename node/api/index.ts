/**
 * The HTTP API (loopback only, token-checked): what the CLI talks to.
 *
 * @module
 */
export { createApiServer, type ApiServer, type ApiServerInit } from './server.js'
export { routes, type Route, type RouteContext } from './routes.js'
export type { ApiErrorBody } from './http.js'
export { readApiToken, ApiTokenError, MIN_API_TOKEN_LENGTH } from './token.js'
