/*
 * probe_badinit_drv: probe_drv.c whose entry's init fails (the driver is still
 * named "probe_drv"; a reload from this file ends in
 * {'DOWN', Ref, driver, probe_drv, {load_failure, driver_init_failed}}).
 */
#define PROBE_FAIL_INIT
#include "probe_drv.c"
