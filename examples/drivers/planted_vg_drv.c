/*
 * planted_vg_drv: a driver with a memory bug that does not crash it, for testing
 * `ddll fuzz --valgrind`: only a memory checker sees it.
 *
 * open_port({spawn_driver, "planted_vg_drv [ARGS]"}, Opts): any ARGS.
 *
 * control (port_control/3), replies are lists:
 *   4 -> sets "checksum" mode (reply "c")
 *   0 -> back to echo mode (reply empty)
 *   other -> -1 (badarg)
 * output (port_command): echoes the bytes; in checksum mode it replies with one byte, the
 *   sum of the bytes of its copy of the data (empty data: an empty reply), which reads one
 *   byte past the copy (a heap overread: the bytes after a small block are there, so nothing
 *   crashes).
 */
#include <stdlib.h>
#include <string.h>

#include "erl_driver.h"

typedef struct {
    ErlDrvPort port;
    int checksum;
} vg_data;

static ErlDrvData vg_start(ErlDrvPort port, char *command)
{
    (void)command;
    vg_data *d = driver_alloc(sizeof *d);
    if (d == NULL)
        return ERL_DRV_ERROR_GENERAL;
    d->port = port;
    d->checksum = 0;
    return (ErlDrvData)d;
}

static void vg_stop(ErlDrvData data)
{
    driver_free(data);
}

static void vg_output(ErlDrvData data, char *buf, ErlDrvSizeT len)
{
    vg_data *d = (vg_data *)data;
    if (!d->checksum) {
        driver_output(d->port, buf, len);
        return;
    }
    if (len == 0) {
        driver_output(d->port, "", 0);
        return;
    }
    unsigned char *copy = malloc(len);
    if (copy == NULL)
        return;
    memcpy(copy, buf, len);
    unsigned char sum = 0;
    for (ErlDrvSizeT i = 0; i <= len; i++) /* the planted bug: <= */
        sum += copy[i];
    free(copy);
    driver_output(d->port, (char *)&sum, 1);
}

static ErlDrvSSizeT vg_control(ErlDrvData data, unsigned int command, char *buf,
                               ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen)
{
    vg_data *d = (vg_data *)data;
    (void)buf;
    (void)len;
    (void)rlen;
    switch (command) {
    case 0:
        d->checksum = 0;
        return 0;
    case 4:
        d->checksum = 1;
        **rbuf = 'c';
        return 1;
    default:
        return -1;
    }
}

static ErlDrvEntry vg_entry = {
    .start = vg_start,
    .stop = vg_stop,
    .output = vg_output,
    .driver_name = "planted_vg_drv",
    .control = vg_control,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(planted_vg_drv)
{
    return &vg_entry;
}
