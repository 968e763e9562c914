/*
 * bad_init_drv: the entry's init callback returns -1, so loading fails with driver_init_failed.
 */
#include "erl_driver.h"

static int bad_init_init(void)
{
    return -1;
}

static ErlDrvEntry bad_init_drv_entry = {
    .init = bad_init_init,
    .driver_name = "bad_init_drv",
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(bad_init_drv)
{
    return &bad_init_drv_entry;
}
