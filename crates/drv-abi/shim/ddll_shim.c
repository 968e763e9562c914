/*
 * The ddll API shim: a tiny shared object that exports every erl_driver function.
 *
 * A Rust executable does not export its own symbols to libraries it dlopen()s, and a
 * dependency cannot add linker flags to the executable. So the host loads this object with
 * RTLD_GLOBAL before any driver; drivers resolve driver_output & co. against it, and each
 * export forwards through a slot that the host fills once at start with ddll_shim_bind().
 *
 * The forwarders are generated from ddll_api.def, and compiled against the project's own
 * erl_driver.h, so the compiler checks every signature against the header.
 */
#include <stddef.h>
#include <string.h>
#include "erl_driver.h"

#define SHIM_EXPORT __attribute__((visibility("default")))

/* One slot per API function. */
#define DDLL_API(ret, name, params, args) static ret (*ddll_slot_##name) params;
#define DDLL_API_VOID(name, params, args) static void (*ddll_slot_##name) params;
#include "ddll_api.def"
#undef DDLL_API
#undef DDLL_API_VOID

/* The exported forwarders. */
#define DDLL_API(ret, name, params, args) \
    SHIM_EXPORT ret name params { return ddll_slot_##name args; }
#define DDLL_API_VOID(name, params, args) \
    SHIM_EXPORT void name params { ddll_slot_##name args; }
#include "ddll_api.def"
#undef DDLL_API
#undef DDLL_API_VOID

/* The one data symbol of the API: the term data value of `[]` (ERL_DRV_NIL). */
SHIM_EXPORT const ErlDrvTermData driver_term_nil = ERL_DRV_NIL;

struct ddll_binding {
    const char *name;
    void **slot;
};

#define DDLL_API(ret, name, params, args) { #name, (void **)&ddll_slot_##name },
#define DDLL_API_VOID(name, params, args) { #name, (void **)&ddll_slot_##name },
static const struct ddll_binding ddll_bindings[] = {
#include "ddll_api.def"
};
#undef DDLL_API
#undef DDLL_API_VOID

#define DDLL_NUM_BINDINGS (sizeof(ddll_bindings) / sizeof(ddll_bindings[0]))

/* Fills the slot of `name`; 0 on success, -1 if the shim exports no such function. */
SHIM_EXPORT int ddll_shim_bind(const char *name, void *fn)
{
    size_t i;
    for (i = 0; i < DDLL_NUM_BINDINGS; i++) {
        if (strcmp(ddll_bindings[i].name, name) == 0) {
            *ddll_bindings[i].slot = fn;
            return 0;
        }
    }
    return -1;
}

/* How many functions the shim exports. */
SHIM_EXPORT size_t ddll_shim_count(void)
{
    return DDLL_NUM_BINDINGS;
}

/* The name of function `i`, or NULL past the end; lets the host check it binds them all. */
SHIM_EXPORT const char *ddll_shim_name(size_t i)
{
    return i < DDLL_NUM_BINDINGS ? ddll_bindings[i].name : NULL;
}

/* Whether function `i` has been bound (1) or not (0); -1 past the end. */
SHIM_EXPORT int ddll_shim_is_bound(size_t i)
{
    return i < DDLL_NUM_BINDINGS ? (*ddll_bindings[i].slot != NULL) : -1;
}
