/* With ERL_DRIVER_TYPES_ONLY the API functions are not declared, so calling one is an
 * implicit declaration (an error with -Werror). */
#define ERL_DRIVER_TYPES_ONLY
#include <erl_driver.h>

int call_undeclared(ErlDrvPort port) { return driver_output(port, 0, 0); }
