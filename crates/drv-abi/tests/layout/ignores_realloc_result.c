/* Ignoring driver_realloc_binary's result must warn (warn_unused_result), as with OTP. */
#include <erl_driver.h>

void grow(ErlDrvBinary *bin) { driver_realloc_binary(bin, 100); }
