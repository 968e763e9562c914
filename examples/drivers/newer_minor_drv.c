/*
 * newer_minor_drv: declares minor version 99 (newer than the runtime's), so loading fails
 * with driver_incorrect_version.
 */
#include "erl_driver.h"

static ErlDrvEntry newer_minor_drv_entry = {
    .driver_name = "newer_minor_drv",
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = 99,
};

DRIVER_INIT(newer_minor_drv)
{
    return &newer_minor_drv_entry;
}
