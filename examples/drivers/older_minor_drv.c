/*
 * older_minor_drv: declares OTP 25's major version with minor 0 (3.0): an older minor.
 * It has no callbacks besides the name, so it is only for erl_ddll:load/2.
 */
#include "erl_driver.h"

static ErlDrvEntry older_minor_drv_entry = {
    .driver_name = "older_minor_drv",
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = 0,
};

DRIVER_INIT(older_minor_drv)
{
    return &older_minor_drv_entry;
}
