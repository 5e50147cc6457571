#ifndef CMSRPSUPPORT_H
#define CMSRPSUPPORT_H
#include <stddef.h>

/* Finds the first occurrence of needle (at least 2 bytes) in haystack; returns
   its offset, or -1. The MSRP parser's end-line search: a vectorised
   "packed pair" search (first and last needle byte compared 32 or 16 positions
   at a time, candidates verified with memcmp), memmem where SIMD is unavailable. */
long cmsrp_find(const void *haystack, size_t haystack_len, const void *needle, size_t needle_len);

#endif
