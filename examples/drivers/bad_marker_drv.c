/*
 * bad_marker_drv: extended_marker is not ERL_DRV_EXTENDED_MARKER (a pre-extended driver),
 * so loading fails with driver_incorrect_version.
 */
#include "erl_driver.h"

static ErlDrvEntry bad_marker_drv_entry = {
    .driver_name = "bad_marker_drv",
    .extended_marker = 0, /* not the extended one */
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(bad_marker_drv)
{
    return &bad_marker_drv_entry;
}
