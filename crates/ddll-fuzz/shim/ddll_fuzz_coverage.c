/*
 * Sanitizer-coverage hooks for `ddll fuzz`, preloaded (LD_PRELOAD) into the host process of
 * the isolated driver, so that a driver built with
 *   gcc:   -fsanitize-coverage=trace-pc,trace-cmp
 *   clang: -fsanitize-coverage=trace-pc-guard,trace-cmp
 * resolves the hooks its instrumentation calls when it is opened.
 *
 * What they record goes to a file the fuzzer names in DDLL_FUZZ_COVERAGE, mapped shared:
 * edge hit counts (AFL's scheme: a block's location xor the previous one's, halved) and the
 * operands of the driver's comparisons and switches, which the fuzzer puts into its inputs.
 * The layout is `coverage.rs`'s (EDGES, CMP_OFFSET, CMP_ENTRIES). Without the variable the
 * hooks write to a private buffer: the driver runs as usual.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define EDGES (1u << 16)
#define CMP_ENTRIES 1024u

struct cmp_entry {
    uint64_t constant; /* or the first operand */
    uint64_t operand;
    uint32_t size; /* in bytes */
    uint32_t is_const;
};

struct shared {
    uint8_t edges[EDGES];
    uint32_t cmp_count;
    uint32_t pad;
    struct cmp_entry cmps[CMP_ENTRIES];
};

static struct shared private_map;
static struct shared *map = &private_map;
static __thread uintptr_t previous;
static uint32_t next_guard = 1;

__attribute__((constructor)) static void ddll_fuzz_coverage_attach(void)
{
    const char *path = getenv("DDLL_FUZZ_COVERAGE");
    if (path == NULL)
        return;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return;
    void *shared = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (shared != MAP_FAILED)
        map = shared;
}

static inline void hit(uintptr_t location)
{
    uintptr_t current = ((location ^ (location >> 15)) * 0x9E3779B1u) & (EDGES - 1);
    uint8_t *counter = &map->edges[(current ^ previous) & (EDGES - 1)];
    if (*counter != 255)
        ++*counter;
    previous = current >> 1;
}

/* The address range of one loaded object, to make a PC relative to its load address (the
 * same in every host, whatever address randomisation did). */
struct object_range {
    uintptr_t low, high, base;
};

static __thread struct object_range last_object;

struct search {
    uintptr_t pc;
    struct object_range found;
};

static int find_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct search *s = data;
    uintptr_t low = UINTPTR_MAX, high = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (start < low)
            low = start;
        if (start + ph->p_memsz > high)
            high = start + ph->p_memsz;
    }
    if (s->pc >= low && s->pc < high) {
        s->found.low = low;
        s->found.high = high;
        s->found.base = info->dlpi_addr;
        return 1;
    }
    return 0;
}

static uintptr_t relative(uintptr_t pc)
{
    if (pc < last_object.low || pc >= last_object.high) {
        struct search s = {pc, {0, 0, 0}};
        if (dl_iterate_phdr(find_object, &s) == 0)
            return pc;
        last_object = s.found;
    }
    return pc - last_object.base;
}

/* gcc's -fsanitize-coverage=trace-pc: a call at the start of every basic block. */
void __sanitizer_cov_trace_pc(void)
{
    hit(relative((uintptr_t)__builtin_return_address(0)));
}

/* clang's -fsanitize-coverage=trace-pc-guard: each edge has a guard, numbered here in the
 * order the objects are loaded (the same in every host). */
void __sanitizer_cov_trace_pc_guard_init(uint32_t *start, uint32_t *stop)
{
    if (start == stop || *start != 0)
        return;
    for (uint32_t *guard = start; guard < stop; guard++)
        *guard = next_guard++;
}

void __sanitizer_cov_trace_pc_guard(uint32_t *guard)
{
    if (*guard != 0)
        hit(*guard);
}

static void record(uint64_t constant, uint64_t operand, uint32_t size, uint32_t is_const)
{
    if (constant == operand)
        return;
    uint32_t i = __atomic_fetch_add(&map->cmp_count, 1, __ATOMIC_RELAXED);
    if (i >= CMP_ENTRIES)
        return;
    map->cmps[i].constant = constant;
    map->cmps[i].operand = operand;
    map->cmps[i].size = size;
    map->cmps[i].is_const = is_const;
}

void __sanitizer_cov_trace_cmp1(uint8_t a, uint8_t b) { record(a, b, 1, 0); }
void __sanitizer_cov_trace_cmp2(uint16_t a, uint16_t b) { record(a, b, 2, 0); }
void __sanitizer_cov_trace_cmp4(uint32_t a, uint32_t b) { record(a, b, 4, 0); }
void __sanitizer_cov_trace_cmp8(uint64_t a, uint64_t b) { record(a, b, 8, 0); }
/* The first operand is the compile-time constant. */
void __sanitizer_cov_trace_const_cmp1(uint8_t a, uint8_t b) { record(a, b, 1, 1); }
void __sanitizer_cov_trace_const_cmp2(uint16_t a, uint16_t b) { record(a, b, 2, 1); }
void __sanitizer_cov_trace_const_cmp4(uint32_t a, uint32_t b) { record(a, b, 4, 1); }
void __sanitizer_cov_trace_const_cmp8(uint64_t a, uint64_t b) { record(a, b, 8, 1); }
void __sanitizer_cov_trace_cmpf(float a, float b) { (void)a; (void)b; }
void __sanitizer_cov_trace_cmpd(double a, double b) { (void)a; (void)b; }
void __sanitizer_cov_trace_div4(uint32_t a) { (void)a; }
void __sanitizer_cov_trace_div8(uint64_t a) { (void)a; }
void __sanitizer_cov_trace_gep(uintptr_t a) { (void)a; }

/* cases[0]: how many, cases[1]: the operand's width in bits, then the case values. */
void __sanitizer_cov_trace_switch(uint64_t value, uint64_t *cases)
{
    uint64_t n = cases[0];
    uint32_t size = (uint32_t)(cases[1] / 8);
    for (uint64_t i = 0; i < n && i < 64; i++)
        record(cases[2 + i], value, size ? size : 8, 1);
}
