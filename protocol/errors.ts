/**
 * The error classes that protocol/ throws, and their base class.
 *
 * They live here so that protocol/ imports nothing from node/; node/errors.ts
 * re-exports every one of them, so there is still exactly one class object
 * per error and `instanceof` holds wherever a caller imports it from. Each
 * has a stable `name` and the HTTP `status` the API answers with.
 *
 * @module
 */

/** Base class: every error Shoal raises on purpose extends it. */
export class ShoalError extends Error {
  override name = 'ShoalError'
  /** HTTP status the API answers with when this error reaches it. */
  readonly status: number = 500

  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
  }
}

/** A frame that is not a valid message of a wire protocol. */
export class InvalidMessageError extends ShoalError {
  override name = 'InvalidMessageError'
  override readonly status = 400
}

/** A string that is not a valid CID. */
export class InvalidCIDError extends ShoalError {
  override name = 'InvalidCIDError'
  override readonly status = 400
}

/** A namespace path that is malformed (relative, contains `..`, empty segments…). */
export class InvalidPathError extends ShoalError {
  override name = 'InvalidPathError'
  override readonly status = 400
}

/** A namespace path longer than PATH_MAX, or holding a name longer than NAME_MAX (the mount answers ENAMETOOLONG). */
export class NameTooLongError extends InvalidPathError {
  override name = 'NameTooLongError'
}

/** Arguments or request fields that fail validation. */
export class InvalidArgumentError extends ShoalError {
  override name = 'InvalidArgumentError'
  override readonly status = 400
}

/** A durability policy that does not parse or is out of bounds (`ec:K+M`, `replicas:N`, `none`). */
export class InvalidPolicyError extends ShoalError {
  override name = 'InvalidPolicyError'
  override readonly status = 400
}

/** A stripe manifest that is malformed or does not match the file it names. */
export class InvalidManifestError extends ShoalError {
  override name = 'InvalidManifestError'
  override readonly status = 422
}
