/*
 * The gear hash scan of the FastCDC chunker (node/content/chunker/fastcdc.ts),
 * in C.
 *
 * Why: an import cuts every byte of a file into leaves, and the scan for the
 * cut points is a byte-by-byte loop: `h = (h << 1) + GEAR[b]`, stopping after
 * the first byte where `h & mask` is zero. V8 runs the loop at ~3 ns a byte
 * on the cores without the SHA extensions (~8 cycles), the largest share of
 * an import's CPU there once the leaves were hashed side by side; compiled,
 * the loop's one dependency is a shift and an add a byte.
 *
 * How: `gearScan(buf, gear, warm, from, to, mask)` is the JavaScript
 * function's twin, called synchronously (a scan of a leaf's worth of bytes
 * takes far longer than the call): it hashes buf[warm..from) without
 * testing, then buf[from..to) until the first hit, and returns the index
 * after that byte, or -1. Its arithmetic is modulo 2^32 as the JavaScript
 * `| 0` is, so both give the same cut points (checked against each other in
 * test/node/content/chunker.test.ts). The indices are checked against the
 * array's length before any byte is read.
 */
#include <stdint.h>
#include <node_api.h>
#include "gear.h"

static int64_t scan (const uint8_t *buf, const uint32_t *gear, int64_t warm, int64_t from, int64_t to, uint32_t mask) {
  uint32_t h = 0;
  int64_t i = warm;
  for (; i < from; i++) h = (h << 1) + gear[buf[i]];
  for (; i < to; i++) {
    h = (h << 1) + gear[buf[i]];
    if ((h & mask) == 0) return i + 1;
  }
  return -1;
}

/* Get the typed array `value` of `type`: its bytes and its length in elements; false (and a TypeError thrown) otherwise. */
static bool typed_of (napi_env env, napi_value value, napi_typedarray_type want, void **data, size_t *length) {
  bool is_typed = false;
  napi_typedarray_type type;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, value, &type, length, data, NULL, NULL) != napi_ok || type != want) {
    napi_throw_type_error(env, NULL, want == napi_uint8_array ? "gearScan: buf must be a Uint8Array" : "gearScan: gear must be an Int32Array");
    return false;
  }
  return true;
}

/* gearScan(buf: Uint8Array, gear: Int32Array (256), warm, from, to, mask): number */
napi_value gear_scan (napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 6) {
    napi_throw_type_error(env, NULL, "gearScan: expected (buf, gear, warm, from, to, mask)");
    return NULL;
  }
  void *buf, *gear;
  size_t length, entries;
  if (!typed_of(env, argv[0], napi_uint8_array, &buf, &length) || !typed_of(env, argv[1], napi_int32_array, &gear, &entries)) return NULL;
  if (entries != 256) {
    napi_throw_range_error(env, NULL, "gearScan: gear must hold 256 entries");
    return NULL;
  }
  int64_t at[3];
  for (int k = 0; k < 3; k++) {
    napi_valuetype type;
    double value;
    if (napi_typeof(env, argv[2 + k], &type) != napi_ok || type != napi_number ||
        napi_get_value_double(env, argv[2 + k], &value) != napi_ok || !(value >= 0 && value <= (double)length) || value != (double)(int64_t)value) {
      napi_throw_range_error(env, NULL, "gearScan: warm, from and to must be whole indices within buf");
      return NULL;
    }
    at[k] = (int64_t)value;
  }
  if (!(at[0] <= at[1] && at[1] <= at[2])) {
    napi_throw_range_error(env, NULL, "gearScan: expected warm <= from <= to");
    return NULL;
  }
  int32_t mask;
  if (napi_get_value_int32(env, argv[5], &mask) != napi_ok) {
    napi_throw_type_error(env, NULL, "gearScan: mask must be a number");
    return NULL;
  }
  napi_value result;
  napi_create_int64(env, scan(buf, gear, at[0], at[1], at[2], (uint32_t)mask), &result);
  return result;
}
