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
static void reject (napi_env env, hash_job_t *job, const char *text) {
  napi_value message, error;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, NULL, message, &error);
  napi_reject_deferred(env, job->deferred, error);
}

static void hash_complete (napi_env env, napi_status status, void *arg) {
  hash_job_t *job = arg;
  void *out;
  napi_value buffer;
  if (status != napi_ok) {
    reject(env, job, "sha256: the job was cancelled");
  } else if (!job->hashed) {
    /* never a digest of zeros: the block would be judged corrupt and its peer punished */
    reject(env, job, "sha256: OpenSSL could not hash");
  } else if (napi_create_buffer_copy(env, SHA256_DIGEST_LENGTH, job->digest, &out, &buffer) != napi_ok) {
    reject(env, job, "sha256: out of memory");
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
  reject(env, job, failed);
  free(job);
  return promise;
}

static napi_value init (napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "sha256", NAPI_AUTO_LENGTH, sha256_async, NULL, &fn);
  napi_set_named_property(env, exports, "sha256", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
