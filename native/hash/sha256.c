/*
 * sha-256 of a block on libuv's thread pool, without copying it.
 *
 * Why: a node hashes every block it receives from a peer (a fetched leaf or
 * shard, a pushed one) before it uses it. On a core without the SHA
 * extensions the hash runs at ~0.25 GB/s, so it goes to the thread pool
 * (node/blocks/verify.ts). WebCrypto's `digest` does that, but first copies
 * the bytes on the calling thread for its job: 200-320 ms of the event
 * loop's CPU per 512 MiB of 256 KiB blocks, against 30-80 ms through this
 * addon (docs/benchmarks.md, "Received blocks hashed without a copy"), on
 * the thread that bounds a remote read.
 *
 * How: the job keeps a reference to the caller's array, so it stays alive,
 * and hashes its bytes where they are, with OpenSSL's SHA256 (the one Node
 * itself links and exports), on the thread pool; the 32-byte digest settles
 * a promise. As with `fs.write` of a buffer, which Node does not copy
 * either, the caller must neither change nor transfer the bytes until the
 * promise settles: Shoal hashes a received block before anything else
 * touches it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include <openssl/sha.h>
#include "sha256-lanes.h"
#include "gear.h"

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref bytes;
  const uint8_t *data;
  size_t length;
  /* set by the thread pool: OpenSSL's answer (NULL when it could not hash) */
  int hashed;
  uint8_t digest[SHA256_DIGEST_LENGTH];
} hash_job_t;

static void hash_execute (napi_env env, void *arg) {
  hash_job_t *job = arg;
  job->hashed = SHA256(job->data, job->length, job->digest) != NULL;
}

/* Reject the job's promise with an Error of `text`. */
static void reject (napi_env env, napi_deferred deferred, const char *text) {
  napi_value message, error;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, NULL, message, &error);
  napi_reject_deferred(env, deferred, error);
}

static void hash_complete (napi_env env, napi_status status, void *arg) {
  hash_job_t *job = arg;
  void *out;
  napi_value buffer;
  if (status != napi_ok) {
    reject(env, job->deferred, "sha256: the job was cancelled");
  } else if (!job->hashed) {
    /* never a digest of zeros: the block would be judged corrupt and its peer punished */
    reject(env, job->deferred, "sha256: OpenSSL could not hash");
  } else if (napi_create_buffer_copy(env, SHA256_DIGEST_LENGTH, job->digest, &out, &buffer) != napi_ok) {
    reject(env, job->deferred, "sha256: out of memory");
  } else {
    napi_resolve_deferred(env, job->deferred, buffer);
  }
  napi_delete_reference(env, job->bytes);
  napi_delete_async_work(env, job->work);
  free(job);
}

/* sha256(bytes: Uint8Array): Promise<Buffer> */
static napi_value sha256_async (napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_typed = false;
  if (argc < 1 || napi_is_typedarray(env, argv[0], &is_typed) != napi_ok || !is_typed) {
    napi_throw_type_error(env, NULL, "sha256: expected a Uint8Array");
    return NULL;
  }
  napi_typedarray_type type;
  size_t length;
  void *data;
  napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL);
  if (type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "sha256: expected a Uint8Array");
    return NULL;
  }
  hash_job_t *job = calloc(1, sizeof(hash_job_t));
  if (job == NULL) {
    napi_throw_error(env, NULL, "sha256: out of memory");
    return NULL;
  }
  job->data = data;
  job->length = length;
  napi_value promise, name;
  /* each step may fail only where calls into JavaScript are refused (a worker being terminated): then nothing is queued */
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok) {
    free(job);
    return NULL;
  }
  const char *failed;
  if (napi_create_reference(env, argv[0], 1, &job->bytes) != napi_ok) {
    failed = "sha256: cannot hold the bytes";
    goto free_job;
  }
  if (napi_create_string_utf8(env, "shoal:sha256", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, hash_execute, hash_complete, job, &job->work) != napi_ok) {
    failed = "sha256: cannot start the job";
    goto drop_reference;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    failed = "sha256: cannot queue the job";
    goto delete_work;
  }
  return promise;

  /* undone in the reverse order of the steps above */
delete_work:
  napi_delete_async_work(env, job->work);
drop_reference:
  napi_delete_reference(env, job->bytes);
free_job:
  reject(env, job->deferred, failed);
  free(job);
  return promise;
}

/* The most messages one sha256Many call takes (the caller batches fewer). */
#define MANY_MAX 256

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  size_t count;
  int width;
  /* set by the thread pool: sha256_many's answer */
  int status;
  napi_ref bytes[MANY_MAX];
  message_t messages[MANY_MAX];
  uint8_t digests[MANY_MAX * SHA256_DIGEST_LENGTH];
} many_job_t;

static void many_execute (napi_env env, void *arg) {
  many_job_t *job = arg;
  job->status = sha256_many(job->messages, job->count, job->digests, job->width);
}

static void many_free (napi_env env, many_job_t *job) {
  for (size_t i = 0; i < job->count; i++) {
    if (job->bytes[i] != NULL) napi_delete_reference(env, job->bytes[i]);
  }
  free(job);
}

static void many_complete (napi_env env, napi_status status, void *arg) {
  many_job_t *job = arg;
  void *out;
  napi_value buffer;
  if (status != napi_ok) {
    reject(env, job->deferred, "sha256Many: the job was cancelled");
  } else if (job->status != 0) {
    reject(env, job->deferred, "sha256Many: OpenSSL could not hash");
  } else if (napi_create_buffer_copy(env, job->count * SHA256_DIGEST_LENGTH, job->digests, &out, &buffer) != napi_ok) {
    reject(env, job->deferred, "sha256Many: out of memory");
  } else {
    napi_resolve_deferred(env, job->deferred, buffer);
  }
  napi_delete_async_work(env, job->work);
  many_free(env, job);
}

/*
 * sha256Many(list: Uint8Array[], width?: 1 | 8 | 16): Promise<Buffer>, the
 * digests one after another (32 bytes each). Without `width`, the fastest
 * way for this core and this many messages (sha256-lanes.c). The same
 * contract as sha256: no message may change until the promise settles.
 */
static napi_value sha256_many_async (napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_array = false;
  uint32_t count = 0;
  if (argc < 1 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[0], &count) != napi_ok) {
    napi_throw_type_error(env, NULL, "sha256Many: expected an array of Uint8Array");
    return NULL;
  }
  if (count > MANY_MAX) {
    napi_throw_range_error(env, NULL, "sha256Many: at most 256 messages at once");
    return NULL;
  }
  int width = -1;
  napi_valuetype type_of_width = napi_undefined;
  if (argc >= 2) napi_typeof(env, argv[1], &type_of_width);
  if (type_of_width != napi_undefined) {
    double asked;
    if (type_of_width != napi_number || napi_get_value_double(env, argv[1], &asked) != napi_ok ||
        (asked != 1 && asked != 8 && asked != 16)) {
      napi_throw_type_error(env, NULL, "sha256Many: width must be 1, 8 or 16");
      return NULL;
    }
    if (!(sha256_lane_widths() & (unsigned int)asked)) {
      napi_throw_range_error(env, NULL, "sha256Many: this core cannot hash at that width");
      return NULL;
    }
    width = (int)asked;
  }
  many_job_t *job = calloc(1, sizeof(many_job_t));
  if (job == NULL) {
    napi_throw_error(env, NULL, "sha256Many: out of memory");
    return NULL;
  }
  job->width = width;
  /* first every element, held: reading one may run JavaScript (a getter), which could detach another's bytes */
  napi_value items[MANY_MAX];
  for (uint32_t i = 0; i < count; i++) {
    bool is_typed = false;
    if (napi_get_element(env, argv[0], i, &items[i]) != napi_ok ||
        napi_is_typedarray(env, items[i], &is_typed) != napi_ok || !is_typed) {
      many_free(env, job);
      napi_throw_type_error(env, NULL, "sha256Many: expected an array of Uint8Array");
      return NULL;
    }
    if (napi_create_reference(env, items[i], 1, &job->bytes[i]) != napi_ok) {
      many_free(env, job);
      napi_throw_error(env, NULL, "sha256Many: cannot hold the bytes");
      return NULL;
    }
    job->count = i + 1;
  }
  /* then where each one's bytes lie, with no JavaScript run between this and the job */
  for (uint32_t i = 0; i < count; i++) {
    napi_typedarray_type type;
    size_t length;
    void *data;
    if (napi_get_typedarray_info(env, items[i], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
      many_free(env, job);
      napi_throw_type_error(env, NULL, "sha256Many: expected an array of Uint8Array");
      return NULL;
    }
    job->messages[i].data = data;
    job->messages[i].length = length;
  }
  napi_value promise, name;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok) {
    many_free(env, job);
    return NULL;
  }
  if (napi_create_string_utf8(env, "shoal:sha256Many", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, many_execute, many_complete, job, &job->work) != napi_ok) {
    reject(env, job->deferred, "sha256Many: cannot start the job");
    many_free(env, job);
    return promise;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_async_work(env, job->work);
    reject(env, job->deferred, "sha256Many: cannot queue the job");
    many_free(env, job);
  }
  return promise;
}

static napi_value init (napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "sha256", NAPI_AUTO_LENGTH, sha256_async, NULL, &fn);
  napi_set_named_property(env, exports, "sha256", fn);
  napi_create_function(env, "sha256Many", NAPI_AUTO_LENGTH, sha256_many_async, NULL, &fn);
  napi_set_named_property(env, exports, "sha256Many", fn);
  napi_create_function(env, "gearScan", NAPI_AUTO_LENGTH, gear_scan, NULL, &fn);
  napi_set_named_property(env, exports, "gearScan", fn);
  /* the widths this core can hash at (sha256Many's `width`), and whether it has the SHA extensions */
  napi_value widths, item;
  unsigned int bits = sha256_lane_widths();
  uint32_t n = 0;
  napi_create_array(env, &widths);
  for (int width = 1; width <= 16; width <<= 1) {
    if (!(bits & (unsigned int)width)) continue;
    napi_create_int32(env, width, &item);
    napi_set_element(env, widths, n++, item);
  }
  napi_set_named_property(env, exports, "sha256Widths", widths);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
