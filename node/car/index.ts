/**
 * CAR (Content Addressable aRchive) export and import of DAGs.
 *
 * @module
 */
export { exportCar } from './export.js'
export type { ExportCarOptions } from './export.js'
export { importCar, stageCar, DEFAULT_MAX_BLOCK_SIZE, DEFAULT_MAX_HEADER_SIZE } from './import.js'
export type { ImportCarComponents, ImportCarOptions, ImportCarResult, StagedCar } from './import.js'
export { linksOf } from './links.js'
export { InvalidUnixFSError } from './unixfs-check.js'
