/*
 * echov_drv: echoes port commands through the outputv callback.
 *
 * The runtime hands port_command data to outputv as an I/O vector (binaries
 * stay separate entries); the driver echoes the whole vector back with
 * driver_outputv. A command starting with "hdr:" is echoed with the 4-byte
 * prefix moved into the header (driver_outputv's hbuf) and skipped in the
 * vector, which shows the `skip` argument. "fail_eof" closes the port with
 * driver_failure_eof. Also exercises driver_vec_to_buf for that prefix check.
 */
#include <string.h>

#include "erl_driver.h"

typedef struct {
    ErlDrvPort port;
} EchovState;

static ErlDrvData echov_start(ErlDrvPort port, char *command)
{
    EchovState *st = driver_alloc(sizeof(EchovState));
    (void)command;
    if (st == NULL)
        return ERL_DRV_ERROR_GENERAL;
    st->port = port;
    return (ErlDrvData)st;
}

static void echov_stop(ErlDrvData data)
{
    driver_free(data);
}

static void echov_outputv(ErlDrvData data, ErlIOVec *ev)
{
    EchovState *st = (EchovState *)data;
    char head[8];
    ErlDrvSizeT got = driver_vec_to_buf(ev, head, sizeof head);

    if (got == 8 && memcmp(head, "fail_eof", 8) == 0 && ev->size == 8) {
        driver_failure_eof(st->port);
    } else if (got >= 4 && memcmp(head, "hdr:", 4) == 0) {
        driver_outputv(st->port, "hdr", 3, ev, 4);
    } else {
        driver_outputv(st->port, NULL, 0, ev, 0);
    }
}

static ErlDrvEntry echov_driver_entry = {
    .start = echov_start,
    .stop = echov_stop,
    .output = NULL, /* outputv takes all commands */
    .driver_name = "echov_drv",
    .outputv = echov_outputv,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(echov_drv)
{
    return &echov_driver_entry;
}
