/**
 * A tier's settings (no credentials), kept light: the repo config imports it
 * without loading the S3 SDK.
 *
 * @module
 */
import { z } from 'zod'

/** Schema of a tier's settings, as the repo config and the namespace carry them. */
export const TierConfigSchema = z.object({
  /** Base URL of the S3 API (`https://s3.eu-west-1.amazonaws.com`, `http://127.0.0.1:9000`…). */
  endpoint: z.string().min(1).max(2048),
  /** Bucket name. */
  bucket: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/, 'must be 1..255 characters of [A-Za-z0-9._-]'),
  /** Key prefix of every object the tier writes. */
  prefix: z.string().max(512).regex(/^[^/\p{Cc}][^\p{Cc}]*$|^$/u, 'must not start with "/" nor hold control characters').optional(),
  /** Signing region. */
  region: z.string().regex(/^[a-z0-9-]{1,64}$/, 'must be 1..64 characters of [a-z0-9-]').optional()
}).strict()

/** Where the tier lives: endpoint, bucket, optional key prefix and region. No credentials. */
export type TierConfig = z.infer<typeof TierConfigSchema>

/**
 * Whether a prefix given to `shoal tier s3` holds a `.` or `..` segment,
 * which servers that map keys to paths (and proxies in front of them)
 * resolve: `../..` would put the objects beside the bucket's others, or
 * nowhere (an operator's test saved it as given). Checked when a tier is
 * set, not when a config is loaded: a config an older build saved so still
 * starts the node.
 */
export function hasDotSegment (prefix: string | undefined): boolean {
  return prefix !== undefined && prefix.split('/').some(segment => segment === '.' || segment === '..')
}
