#define _GNU_SOURCE
#include "CMSRPSupport.h"
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* AVX2: 64 bytes an iteration; a candidate must match the needle's first,
   middle and last bytes before memcmp looks at it. */
__attribute__((target("avx2")))
static long find_avx2(const uint8_t *h, size_t hlen, const uint8_t *n, size_t nlen) {
    const size_t mid = nlen / 2;
    const __m256i first = _mm256_set1_epi8((char)n[0]);
    const __m256i middle = _mm256_set1_epi8((char)n[mid]);
    const __m256i last = _mm256_set1_epi8((char)n[nlen - 1]);
    size_t i = 0;
    for (; i + nlen - 1 + 64 <= hlen; i += 64) {
        const uint8_t *p = h + i;
        __m256i m0 = _mm256_and_si256(
            _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)p), first),
                             _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(p + mid)), middle)),
            _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(p + nlen - 1)), last));
        __m256i m1 = _mm256_and_si256(
            _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(p + 32)), first),
                             _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(p + 32 + mid)), middle)),
            _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(p + 32 + nlen - 1)), last));
        uint64_t mask = (uint32_t)_mm256_movemask_epi8(m0) | ((uint64_t)(uint32_t)_mm256_movemask_epi8(m1) << 32);
        while (mask) {
            unsigned bit = (unsigned)__builtin_ctzll(mask);
            if (memcmp(p + bit, n, nlen) == 0) return (long)(i + bit);
            mask &= mask - 1;
        }
    }
    for (; i + nlen <= hlen; i++) {
        if (h[i] == n[0] && h[i + nlen - 1] == n[nlen - 1] && memcmp(h + i, n, nlen) == 0) return (long)i;
    }
    return -1;
}

static long find_sse2(const uint8_t *h, size_t hlen, const uint8_t *n, size_t nlen) {
    const __m128i first = _mm_set1_epi8((char)n[0]);
    const __m128i last = _mm_set1_epi8((char)n[nlen - 1]);
    size_t i = 0;
    for (; i + nlen - 1 + 16 <= hlen; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(h + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(h + i + nlen - 1));
        uint32_t mask = (uint32_t)_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a, first), _mm_cmpeq_epi8(b, last)));
        while (mask) {
            unsigned bit = (unsigned)__builtin_ctz(mask);
            if (memcmp(h + i + bit + 1, n + 1, nlen - 2) == 0) return (long)(i + bit);
            mask &= mask - 1;
        }
    }
    for (; i + nlen <= hlen; i++) {
        if (h[i] == n[0] && h[i + nlen - 1] == n[nlen - 1] && memcmp(h + i, n, nlen) == 0) return (long)i;
    }
    return -1;
}

long cmsrp_find(const void *haystack, size_t hlen, const void *needle, size_t nlen) {
    static int has_avx2 = -1;
    if (nlen < 2 || hlen < nlen) {
        if (nlen == 1 && hlen > 0) {
            const void *p = memchr(haystack, *(const uint8_t *)needle, hlen);
            return p ? (long)((const uint8_t *)p - (const uint8_t *)haystack) : -1;
        }
        return -1;
    }
    if (has_avx2 < 0) {
        __builtin_cpu_init();
        has_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
    }
    return has_avx2 ? find_avx2(haystack, hlen, needle, nlen) : find_sse2(haystack, hlen, needle, nlen);
}

#else

long cmsrp_find(const void *haystack, size_t hlen, const void *needle, size_t nlen) {
    const void *p = memmem(haystack, hlen, needle, nlen);
    return p ? (long)((const uint8_t *)p - (const uint8_t *)haystack) : -1;
}

#endif
