#include <lzma.h>
// LZMA_STREAM_INIT is a compound initialiser; LZMA_CONCATENATED uses UINT32_C(): neither imports.
static inline lzma_stream clzma_stream_init(void) { lzma_stream s = LZMA_STREAM_INIT; return s; }
static const uint32_t CLZMA_CONCATENATED = LZMA_CONCATENATED;
