// CLeptonica: the only door from Swift into Leptonica 1.82 (image decoding, rotation, deskew, binarisation).
//
// Only the `OCR` module imports this target. pkg-config `lept` adds -I/usr/include/leptonica.
#ifndef INTELLIDOCS_CLEPTONICA_H
#define INTELLIDOCS_CLEPTONICA_H

#include <allheaders.h>

#endif
