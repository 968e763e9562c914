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
    .start = undef_start,
    .driver_name = "undefined_symbol_drv",
    .extended_marker = ERL_DRV_EXTENDED_MARKER,
    .major_version = ERL_DRV_EXTENDED_MAJOR_VERSION,
    .minor_version = ERL_DRV_EXTENDED_MINOR_VERSION,
};

DRIVER_INIT(undefined_symbol_drv)
{
    return &undef_driver_entry;
}
