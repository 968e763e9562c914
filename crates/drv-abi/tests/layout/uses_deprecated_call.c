/* driver_get_now is deprecated: using it must warn, as with OTP. */
#include <erl_driver.h>

int now(ErlDrvNowData *out) { return driver_get_now(out); }
