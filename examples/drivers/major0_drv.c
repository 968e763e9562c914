/*
 * major0_drv: declares extended major version 0 (0.0).
 * It has no callbacks besides the name, so it is only for erl_ddll:load/2.
 */
#include "erl_driver.h"

static ErlDrvEntry major0_drv_entry = {
    .driver_name = "major0_drv",
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = 0,
    .minor_version = 0,
};

DRIVER_INIT(major0_drv)
{
    return &major0_drv_entry;
}
