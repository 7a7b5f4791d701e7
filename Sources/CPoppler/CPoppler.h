// CPoppler: the only door from Swift into poppler-glib (PDF text layers and page rendering) and the cairo
// image surfaces poppler renders into.
//
// Only the `Extraction` module imports this target. pkg-config `poppler-glib` brings the glib, cairo and
// poppler include folders. GLib's `G_OBJECT`-style cast macros do not import into Swift; the glib API is
// used through plain functions (`g_object_unref`, `g_bytes_new`, `g_error_free`).
#ifndef INTELLIDOCS_CPOPPLER_H
#define INTELLIDOCS_CPOPPLER_H

#include <glib.h>
#include <poppler.h>
#include <cairo.h>

#endif
