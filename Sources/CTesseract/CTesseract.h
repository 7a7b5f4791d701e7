// CTesseract: the only door from Swift into Tesseract 5's C API (`tesseract/capi.h`).
//
// Only the `OCR` module imports this target. Tesseract's `struct Pix` is Leptonica's `PIX`: with both
// `CTesseract` and `CLeptonica` imported, Swift sees one type, so a `PIX*` made by Leptonica can be given to
// `TessBaseAPISetImage2` directly.
#ifndef INTELLIDOCS_CTESSERACT_H
#define INTELLIDOCS_CTESSERACT_H

#include <tesseract/capi.h>

#endif
