/*
 * wrong_marker_drv: an extended_marker that is neither 0 nor ERL_DRV_EXTENDED_MARKER.
 * It has no callbacks besides the name, so it is only for erl_ddll:load/2.
 */
#include "erl_driver.h"

static ErlDrvEntry wrong_marker_drv_entry = {
    .driver_name = "wrong_marker_drv",
    .extended_marker = (int)0xdeadbeef,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(wrong_marker_drv)
{
    return &wrong_marker_drv_entry;
}
