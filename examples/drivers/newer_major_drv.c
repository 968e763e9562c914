/*
 * newer_major_drv: declares the extended major version after OTP 25's (4.0).
 * It has no callbacks besides the name, so it is only for erl_ddll:load/2.
 */
#include "erl_driver.h"

static ErlDrvEntry newer_major_drv_entry = {
    .driver_name = "newer_major_drv",
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION + 1,
    .minor_version = 0,
};

DRIVER_INIT(newer_major_drv)
{
    return &newer_major_drv_entry;
}
