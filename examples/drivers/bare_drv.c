/*
 * bare_drv: a driver entry with a name and nothing else: no start, stop, output, outputv,
 * control, call or any other callback. Under BEAM its ports open (start is not called, the
 * port's data is NULL), take commands and close; port_control and port_call are badarg.
 */
#include "erl_driver.h"

static ErlDrvEntry bare_driver_entry = {
    .driver_name = "bare_drv",
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(bare_drv)
{
    return &bare_driver_entry;
}
