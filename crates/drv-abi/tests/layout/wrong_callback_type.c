/* A callback of the wrong type must be rejected. */
#include <erl_driver.h>

static void bad_output(ErlDrvData data, char *buf, int len)
{
    (void)data;
    (void)buf;
    (void)len;
}

void install(ErlDrvEntry *entry) { entry->output = bad_output; }
