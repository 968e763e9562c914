/*
 * wrong_name_drv: the file is wrong_name_drv.so but the entry names the driver "other",
 * so loading it as wrong_name_drv fails with bad_driver_name.
 */
#include "erl_driver.h"

static ErlDrvEntry wrong_name_drv_entry = {
    .driver_name = "other",
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(wrong_name_drv)
{
    return &wrong_name_drv_entry;
}
