/*
 * magic_drv: a driver with a crash behind a four-byte magic, compared byte by byte, for
 * testing `ddll fuzz`'s coverage feedback: random data passes the four comparisons once in
 * 2^32 tries; a fuzzer that sees the driver's edges and comparisons (build it with
 * `-fsanitize-coverage=trace-pc,trace-cmp`) gets past them one at a time.
 *
 * open_port({spawn_driver, "magic_drv [ARGS]"}, Opts): any ARGS.
 * output (port_command): echoes the bytes; data that starts with "FUZZ" writes through NULL
 *   (SIGSEGV).
 */
#include <string.h>

#include "erl_driver.h"

typedef struct {
    ErlDrvPort port;
    int depth; /* how far the last command got: keeps the comparisons apart */
} magic_data;

static ErlDrvData magic_start(ErlDrvPort port, char *command)
{
    (void)command;
    magic_data *d = driver_alloc(sizeof *d);
    if (d == NULL)
        return ERL_DRV_ERROR_GENERAL;
    d->port = port;
    d->depth = 0;
    return (ErlDrvData)d;
}

static void magic_stop(ErlDrvData data)
{
    driver_free(data);
}

static void magic_output(ErlDrvData data, char *buf, ErlDrvSizeT len)
{
    magic_data *d = (magic_data *)data;
    d->depth = 0;
    if (len >= 4 && buf[0] == 'F') {
        d->depth = 1;
        if (buf[1] == 'U') {
            d->depth = 2;
            if (buf[2] == 'Z') {
                d->depth = 3;
                if (buf[3] == 'Z') {
                    volatile char *nowhere = NULL;
                    *nowhere = buf[0]; /* the planted bug */
                }
            }
        }
    }
    driver_output(d->port, buf, len);
}

static ErlDrvEntry magic_entry = {
    .start = magic_start,
    .stop = magic_stop,
    .output = magic_output,
    .driver_name = "magic_drv",
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(magic_drv)
{
    return &magic_entry;
}
