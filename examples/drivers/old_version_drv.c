/*
 * old_version_drv: declares extended major version 1. OTP 25 accepts majors 2 and 3 (see
 * major2_drv.c), so only this older one fails with driver_incorrect_version.
 */
#include "erl_driver.h"

static ErlDrvEntry old_version_drv_entry = {
    .driver_name = "old_version_drv",
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = 1,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(old_version_drv)
{
    return &old_version_drv_entry;
}
