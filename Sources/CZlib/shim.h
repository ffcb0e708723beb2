#ifndef SYNCNODE_CZLIB_SHIM_H
#define SYNCNODE_CZLIB_SHIM_H
#include <zlib.h>

/* deflateInit2 and inflateInit2 are macros, which Swift cannot call. */
static inline int czlib_deflate_init2(z_streamp s, int level, int method, int window_bits, int mem_level, int strategy) {
    return deflateInit2(s, level, method, window_bits, mem_level, strategy);
}
static inline int czlib_inflate_init2(z_streamp s, int window_bits) { return inflateInit2(s, window_bits); }
#endif
