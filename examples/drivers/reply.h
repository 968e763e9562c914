/* The text reply of a control or call callback, shared by the example drivers.
 *
 * Copies `text` into the runtime's reply buffer, or into a driver_alloc'ed one (the runtime
 * frees it) when the text is longer than the `rlen` bytes offered. Returns the length, or -1
 * when no buffer can be had. */
#ifndef DDLL_EXAMPLE_REPLY_H
#define DDLL_EXAMPLE_REPLY_H

#include <string.h>

#include "erl_driver.h"

static ErlDrvSSizeT reply(char **rbuf, ErlDrvSizeT rlen, const char *text)
{
    size_t n = strlen(text);
    if (n > rlen) {
        char *big = driver_alloc(n);
        if (big == NULL)
            return -1;
        *rbuf = big;
    }
    memcpy(*rbuf, text, n);
    return (ErlDrvSSizeT)n;
}

#endif
