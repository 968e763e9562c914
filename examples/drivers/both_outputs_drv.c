/*
 * both_outputs_drv: a driver with both output and outputv. Each answers with its own name
 * and the bytes it was given ("output:DATA", "outputv:N:DATA" with N the vector's entry
 * count), showing which one the runtime calls for each kind of port_command data.
 */
#include <stdio.h>
#include <string.h>

#include "erl_driver.h"

static ErlDrvData both_start(ErlDrvPort port, char *command)
{
    (void)command;
    return (ErlDrvData)port;
}

static void both_output(ErlDrvData data, char *buf, ErlDrvSizeT len)
{
    driver_output2((ErlDrvPort)data, "output:", 7, buf, len);
}

static void both_outputv(ErlDrvData data, ErlIOVec *ev)
{
    char head[32];
    int n = snprintf(head, sizeof head, "outputv:%d:", ev->vsize);
    driver_outputv((ErlDrvPort)data, head, (ErlDrvSizeT)n, ev, 0);
}

static ErlDrvEntry both_driver_entry = {
    .start = both_start,
    .output = both_output,
    .outputv = both_outputv,
    .driver_name = "both_outputs_drv",
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(both_outputs_drv)
{
    return &both_driver_entry;
}
