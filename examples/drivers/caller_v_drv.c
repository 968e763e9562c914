/* caller_v_drv: caller_drv whose commands arrive in outputv instead of output. */
#define CALLER_USE_OUTPUTV 1
#define CALLER_DRIVER_NAME "caller_v_drv"
#include "caller_drv.c"
