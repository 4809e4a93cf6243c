/* crc32c (Castagnoli), as the pack records carry it (crc32c.c). */
#ifndef SHOAL_CRC32C_H
#define SHOAL_CRC32C_H
#include <stdint.h>
#include <stddef.h>

/* Build the tables and pick the hardware loop when the CPU has one: once, before any crc32c. */
void crc32c_init (void);

/* The crc32c of `n` bytes at `p`, continuing `crc` (0 to start). */
uint32_t crc32c (uint32_t crc, const uint8_t *p, size_t n);

#endif
