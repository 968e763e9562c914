/*
 * major2_drv: declares extended major version 2 (minor 0). OTP 25 still loads such a
 * driver (the minimum major accepted on load is 2); it has no callbacks
 * besides the name, so it is only for erl_ddll:load/2.
 */
#include "erl_driver.h"

static ErlDrvEntry major2_drv_entry = {
    NULL,              /* init */
    NULL,              /* start */
    NULL,              /* stop */
    NULL,              /* output */
    NULL,              /* ready_input */
    NULL,              /* ready_output */
    "major2_drv",      /* driver_name */
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
    2,                 /* major_version */
    0,                 /* minor_version */
    0,                 /* driver_flags */
    NULL,              /* handle2 */
    NULL,              /* process_exit */
    NULL,              /* stop_select */
    NULL               /* emergency_close */
};

DRIVER_INIT(major2_drv)
{
    return &major2_drv_entry;
}
