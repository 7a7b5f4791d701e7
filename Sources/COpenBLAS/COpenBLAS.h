// COpenBLAS: the only door from Swift into OpenBLAS's CBLAS interface.
//
// Debian's libopenblas-dev ships no cblas.pc; pkg-config `openblas` adds
// -I/usr/include/x86_64-linux-gnu/openblas-pthread/, where OpenBLAS's own cblas.h lives (it also declares
// `openblas_set_num_threads`). Only the `Embedding` module imports this target (and, later, `Search`).
#ifndef INTELLIDOCS_COPENBLAS_H
#define INTELLIDOCS_COPENBLAS_H

#include <cblas.h>

#endif
