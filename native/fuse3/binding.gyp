{
  "targets": [{
    "target_name": "fuse3",
    "sources": ["fuse3.c", "records.c", "crc32c.c"],
    "include_dirs": ["<!@(pkg-config --cflags-only-I fuse3 | sed 's/-I//g')"],
    "libraries": ["<!@(pkg-config --libs fuse3)"],
    "cflags": ["-O2", "-Wall", "-fvisibility=hidden", "-Wno-unused-variable", "-Wno-unused-but-set-variable"]
  }]
}
