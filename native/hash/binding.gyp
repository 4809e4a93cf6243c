{
  "targets": [{
    "target_name": "hash",
    "sources": ["sha256.c", "sha256-lanes.c", "gear.c"],
    "cflags": ["-O3", "-Wall", "-fvisibility=hidden"]
  }]
}
