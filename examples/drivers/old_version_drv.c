/*
 * old_version_drv: declares extended major version 1. OTP 25 accepts majors 2 and 3 (see
 * major2_drv.c), so only this older one fails with driver_incorrect_version.
 */
#include "erl_driver.h"

static ErlDrvEntry old_version_drv_entry = {
    NULL,              /* init */
    NULL,              /* start */
    NULL,              /* stop */
    NULL,              /* output */
    NULL,              /* ready_input */
    NULL,              /* ready_output */
    "old_version_drv", /* driver_name */
    NULL,              /* finish */
    NULL,              /* handle */
    NULL,              /* control */
    NULL,              /* timeout */
    NULL,              /* outputv */
    NULL,              /* ready_async */
    NULL,              /* flush */
    NULL,              /* call */
    NULL,              /* unused_event_callback */
    ERL_DRV_EXTENDED_MARKER,
    1,                 /* major_version */
    ERL_DRV_EXTENDED_MINOR_VERSION,
    0,                 /* driver_flags */
    NULL,              /* handle2 */
    NULL,              /* process_exit */
    NULL,              /* stop_select */
    NULL               /* emergency_close */
};

DRIVER_INIT(old_version_drv)
{
    return &old_version_drv_entry;
}
