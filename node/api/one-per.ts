/**
 * One value per object, made on first use: the status endpoints keep their
 * caches and meters per node (its libp2p, its namespace, its components)
 * without a field on it, and forget them with it.
 *
 * @module
 */

/** A function that returns the same value for the same `key`, made by `make` the first time. */
export function onePer<K extends object, V> (make: (key: K) => V): (key: K) => V {
  const values = new WeakMap<K, V>()
  return key => {
    let value = values.get(key)
    if (value === undefined) {
      value = make(key)
      values.set(key, value)
    }
    return value
  }
}
