/* stubs_tmp.c - temporary empty route tables until each API file lands. */
#include "api/api.h"
