/* What the example drivers share: the text reply of a control or call callback, reading a
 * control argument, and output of a text.
 *
 * The functions are `static inline` so that a driver that uses only some of them builds
 * without unused-function warnings. */
#ifndef DDLL_EXAMPLE_REPLY_H
#define DDLL_EXAMPLE_REPLY_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "erl_driver.h"

/* Copies `text` into the runtime's reply buffer, or into a driver_alloc'ed one (the runtime
 * frees it) when the text is longer than the `rlen` bytes offered. Returns the length, or -1
 * when no buffer can be had. */
static inline ErlDrvSSizeT reply(char **rbuf, ErlDrvSizeT rlen, const char *text)
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

/* reply() with a printf-formatted text (at most 8191 bytes). */
static inline ErlDrvSSizeT replyf(char **rbuf, ErlDrvSizeT rlen, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
static inline ErlDrvSSizeT replyf(char **rbuf, ErlDrvSizeT rlen, const char *format, ...)
{
    char text[8192];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    return reply(rbuf, rlen, text);
}

/* The argument buf[0..len) as a C string in out[size], cut to size - 1 bytes. */
static inline void arg_text(const char *buf, ErlDrvSizeT len, char *out, size_t size)
{
    size_t n = len < size - 1 ? (size_t)len : size - 1;
    memcpy(out, buf, n);
    out[n] = '\0';
}

/* The decimal number at the start of buf[0..len) (0 when there is none). */
static inline unsigned long arg_number(const char *buf, ErlDrvSizeT len)
{
    char text[32];
    arg_text(buf, len, text, sizeof text);
    return strtoul(text, NULL, 10);
}

/* driver_output of a C string. */
static inline void output_text(ErlDrvPort port, const char *text)
{
    driver_output(port, (char *)text, strlen(text));
}

#endif
