/* Uses what the header pulls in (stdlib.h, sys/types.h) without including it itself. */
#include <erl_driver.h>

ssize_t relies_on_header(size_t n)
{
    void *p = malloc(n);
    free(p);
    return (ssize_t)n + (SIZEOF_LONG == (int)sizeof(long) ? 0 : 1);
}
