/** The parts of the s3rver dev dependency (an S3 HTTP server for tests) that tests and benches use. */
declare module 's3rver' {
  import type { AddressInfo } from 'node:net'

  interface S3rverOptions {
    address?: string
    port?: number
    silent?: boolean
    directory?: string
    resetOnClose?: boolean
    allowMismatchedSignatures?: boolean
    vhostBuckets?: boolean
    configureBuckets?: Array<{ name: string, configs?: Array<string | Buffer> }>
  }

  export default class S3rver {
    constructor (options?: S3rverOptions)
    run (): Promise<AddressInfo>
    close (): Promise<void>
  }
}
