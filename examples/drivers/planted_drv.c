/*
 * planted_drv: a driver with bugs planted behind sequences of two operations,
 * for testing `ddll fuzz`. Never load it in process: it takes its host down.
 *
 * open_port({spawn_driver, "planted_drv [ARGS]"}, Opts): any ARGS.
 *
 * control (port_control/3), replies are lists:
 *   1 -> the bytes back
 *   3 -> arms bug A (reply "a")
 *   5 -> arms bug B (reply "b")
 *   0 -> disarms both (reply empty)
 *   other -> -1 (badarg)
 * output (port_command): echoes the bytes; with bug A armed, a command of
 *   exactly 7 bytes writes through NULL (SIGSEGV).
 * call (port_call/3): 2 -> the received term back; with bug B armed,
 *   operation 9 never returns (a callback past any timeout); other -> badarg.
 */
#include <string.h>
#include <unistd.h>

#include "erl_driver.h"

typedef struct {
    ErlDrvPort port;
    int armed_a;
    int armed_b;
} planted_data;

static ErlDrvData planted_start(ErlDrvPort port, char *command)
{
    (void)command;
    planted_data *d = driver_alloc(sizeof *d);
    if (d == NULL)
        return ERL_DRV_ERROR_GENERAL;
    memset(d, 0, sizeof *d);
    d->port = port;
    return (ErlDrvData)d;
}

static void planted_stop(ErlDrvData data)
{
    driver_free(data);
}

static void planted_output(ErlDrvData data, char *buf, ErlDrvSizeT len)
{
    planted_data *d = (planted_data *)data;
    if (d->armed_a && len == 7) {
        volatile char *nowhere = NULL;
        *nowhere = buf[0]; /* bug A */
    }
    driver_output(d->port, buf, len);
}

static ErlDrvSSizeT planted_control(ErlDrvData data, unsigned int command, char *buf,
                                    ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen)
{
    planted_data *d = (planted_data *)data;
    switch (command) {
    case 0:
        d->armed_a = d->armed_b = 0;
        return 0;
    case 1:
        if (len > rlen)
            *rbuf = driver_alloc(len);
        if (*rbuf == NULL)
            return -1;
        memcpy(*rbuf, buf, len);
        return (ErlDrvSSizeT)len;
    case 3:
        d->armed_a = 1;
        **rbuf = 'a';
        return 1;
    case 5:
        d->armed_b = 1;
        **rbuf = 'b';
        return 1;
    default:
        return -1;
    }
}

static ErlDrvSSizeT planted_call(ErlDrvData data, unsigned int command, char *buf,
                                 ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen,
                                 unsigned int *flags)
{
    planted_data *d = (planted_data *)data;
    (void)flags;
    if (command == 9 && d->armed_b) {
        for (;;)
            pause(); /* bug B */
    }
    if (command != 2 && command != 9)
        return -1;
    if (len > rlen)
        *rbuf = driver_alloc(len);
    if (*rbuf == NULL)
        return -1;
    memcpy(*rbuf, buf, len);
    return (ErlDrvSSizeT)len;
}

static ErlDrvEntry planted_entry = {
    .start = planted_start,
    .stop = planted_stop,
    .output = planted_output,
    .driver_name = "planted_drv",
    .control = planted_control,
    .call = planted_call,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(planted_drv)
{
    return &planted_entry;
}
