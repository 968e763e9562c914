/*
 * major2_drv: declares extended major version 2 (minor 0). OTP 25 still loads such a
 * driver (the minimum major accepted on load is 2); it has no callbacks
 * besides the name, so it is only for erl_ddll:load/2.
 */
#include "erl_driver.h"

static ErlDrvEntry major2_drv_entry = {
    .driver_name = "major2_drv",
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = 2,
};

DRIVER_INIT(major2_drv)
{
    return &major2_drv_entry;
}
