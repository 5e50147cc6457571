#ifndef CMSRPSUPPORT_H
#define CMSRPSUPPORT_H
#include <stddef.h>

/* memmem is a GNU/BSD extension that the Swift Glibc module does not export.
   Declared here with its libc prototype so the MSRP parser can call it. */
void *memmem(const void *haystack, size_t haystacklen, const void *needle, size_t needlelen);

static inline const void *cmsrp_memmem(const void *haystack, size_t haystacklen,
                                       const void *needle, size_t needlelen) {
    return memmem(haystack, haystacklen, needle, needlelen);
}
#endif
