/*
 * planted_timer_drv: a driver whose planted crash happens in its own timer, after the
 * operation that set it has returned, for testing how `ddll fuzz` names where a crash showed
 * ("during wait after port_control"). Never load it in process: it takes its host down.
 *
 * open_port({spawn_driver, "planted_timer_drv [ARGS]"}, Opts): any ARGS.
 * control (port_control/3), replies are lists:
 *   7 -> sets a 5 ms timer whose timeout aborts (SIGABRT) (reply "t")
 *   0 -> cancels it (reply empty)
 *   other -> -1 (badarg)
 * output (port_command): echoes the bytes.
 */
#include <stdlib.h>

#include "erl_driver.h"

static ErlDrvData timer_start(ErlDrvPort port, char *command)
{
    (void)command;
    return (ErlDrvData)port;
}

static void timer_output(ErlDrvData data, char *buf, ErlDrvSizeT len)
{
    driver_output((ErlDrvPort)data, buf, len);
}

static void timer_timeout(ErlDrvData data)
{
    (void)data;
    abort(); /* the planted bug */
}

static ErlDrvSSizeT timer_control(ErlDrvData data, unsigned int command, char *buf,
                                  ErlDrvSizeT len, char **rbuf, ErlDrvSizeT rlen)
{
    ErlDrvPort port = (ErlDrvPort)data;
    (void)buf;
    (void)len;
    (void)rlen;
    switch (command) {
    case 0:
        driver_cancel_timer(port);
        return 0;
    case 7:
        driver_set_timer(port, 5);
        **rbuf = 't';
        return 1;
    default:
        return -1;
    }
}

static ErlDrvEntry timer_entry = {
    .start = timer_start,
    .output = timer_output,
    .driver_name = "planted_timer_drv",
    .control = timer_control,
    .timeout = timer_timeout,
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(planted_timer_drv)
{
    return &timer_entry;
}
