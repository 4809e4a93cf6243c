/**
 * The API token the daemon takes from `<repo>/api.token`.
 *
 * Why a bound: the token is compared as given, so a file holding nothing
 * (truncated, or made by hand) gave the daemon an empty token, and a
 * request with no `Authorization` header matched it: the whole API, which
 * controls the node, answered anyone on the machine and any web page of
 * another origin that could reach the loopback port. A very short token is
 * little better. `init` writes 64 hex digits; the daemon refuses to start on
 * a token shorter than {@link MIN_API_TOKEN_LENGTH} characters, before it
 * opens anything.
 *
 * @module
 */
import { readFile } from 'node:fs/promises'
import { ShoalError } from '../errors.js'

/** Fewest characters an API token must have (after white space around it is dropped). */
export const MIN_API_TOKEN_LENGTH = 16

/** `<repo>/api.token` is missing, unreadable or too short to protect the API. */
export class ApiTokenError extends ShoalError {
  override name = 'ApiTokenError'
}

/**
 * Read and check the API token in `file`: its text without surrounding
 * white space.
 *
 * @throws {ApiTokenError} when the file cannot be read or the token is shorter than {@link MIN_API_TOKEN_LENGTH}
 */
export async function readApiToken (file: string): Promise<string> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err: any) {
    throw new ApiTokenError(`cannot read the API token ${file}: ${String(err?.code ?? err?.message ?? err)}`, { cause: err })
  }
  const token = text.trim()
  if (token.length < MIN_API_TOKEN_LENGTH) {
    const fix = `put a random one in it (\`openssl rand -hex 32 > ${file}\`)`
    throw new ApiTokenError(`the API token in ${file} is ${token.length === 0 ? 'empty' : `${token.length} characters long`}: the API would answer ${token.length === 0 ? 'requests without a token' : 'whoever guesses it'}; ${fix}, at least ${MIN_API_TOKEN_LENGTH} characters`)
  }
  return token
}
