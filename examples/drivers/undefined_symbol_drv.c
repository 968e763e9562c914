/*
 * undefined_symbol_drv: calls a function that neither the driver API nor the
 * C library provides. Drivers are opened with RTLD_NOW, so loading fails at
 * once with {error, {open_error, N}} (the dynamic linker's "undefined
 * symbol" message), and `ddll check` names the symbol.
 */
#include "erl_driver.h"

/* Deliberately defined nowhere. */
extern int ddll_example_missing_function(int);

static ErlDrvData undef_start(ErlDrvPort port, char *command)
{
    (void)command;
    return (ErlDrvData)(long)ddll_example_missing_function((int)(long)port);
}

static ErlDrvEntry undef_driver_entry = {
    NULL,                   /* init */
    undef_start,            /* start */
    NULL,                   /* stop */
    NULL,                   /* output */
    NULL,                   /* ready_input */
    NULL,                   /* ready_output */
    "undefined_symbol_drv", /* driver_name */
    NULL,                   /* finish */
    NULL,                   /* handle */
    NULL,                   /* control */
    NULL,                   /* timeout */
    NULL,                   /* outputv */
    NULL,                   /* ready_async */
    NULL,                   /* flush */
    NULL,                   /* call */
    NULL,                   /* unused_event_callback */
    ERL_DRV_EXTENDED_MARKER,
    ERL_DRV_EXTENDED_MAJOR_VERSION,
    ERL_DRV_EXTENDED_MINOR_VERSION,
    0,                      /* driver_flags */
    NULL,                   /* handle2 */
    NULL,                   /* process_exit */
    NULL,                   /* stop_select */
    NULL                    /* emergency_close */
};

DRIVER_INIT(undefined_symbol_drv)
{
    return &undef_driver_entry;
}
