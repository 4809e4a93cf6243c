{
  "targets": [{
    "target_name": "hash",
    "sources": ["sha256.c"],
    "cflags": ["-O2", "-Wall", "-fvisibility=hidden"]
  }]
}
