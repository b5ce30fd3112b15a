/* core/arena.c — bump allocator for everything one training step creates.
 * Chunks form a list; reset rewinds to the first chunk in O(1) and keeps every chunk, so a
 * steady-state training loop allocates nothing after its first step. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

/* In the sanitizer build, memory handed out before the last reset is poisoned, so a tensor read
 * after ct_tape_reset is reported where it happens instead of reading the next step's data. */
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

typedef struct chunk {
    struct chunk *next;
    size_t capacity, used;
    _Alignas(64) unsigned char data[];
} chunk;

struct ct_arena {
    chunk *first, *current;
    size_t chunk_bytes;
    size_t used_before_current; /* bytes handed out in chunks before `current` */
};

static chunk *chunk_new(size_t capacity) {
    chunk *c = aligned_alloc(64, (sizeof(chunk) + capacity + 63) & ~(size_t)63);
    if (!c) ct_fatal("ct_arena", "out of memory allocating a %zu-byte chunk", capacity);
    c->next = NULL;
    c->capacity = capacity;
    c->used = 0;
    POISON(c->data, capacity);
    return c;
}

ct_arena *ct_arena_new(size_t chunk_bytes) {
    ct_arena *a = calloc(1, sizeof *a);
    if (!a) ct_fatal("ct_arena_new", "out of memory");
    a->chunk_bytes = chunk_bytes ? chunk_bytes : (size_t)1 << 22;
    a->first = a->current = chunk_new(a->chunk_bytes);
    return a;
}

void ct_arena_free(ct_arena *a) {
    if (!a) return;
    for (chunk *c = a->first, *next; c; c = next) {
        next = c->next;
        UNPOISON(c->data, c->capacity);
        free(c);
    }
    free(a);
}

void *ct_arena_alloc(ct_arena *a, size_t bytes) {
    bytes = (bytes + 63) & ~(size_t)63;
    for (;;) {
        chunk *c = a->current;
        if (c->capacity - c->used >= bytes) {
            void *p = c->data + c->used;
            c->used += bytes;
            UNPOISON(p, bytes);
            return p;
        }
        a->used_before_current += c->used;
        if (c->next && c->next->capacity >= bytes) {
            a->current = c->next;
            a->current->used = 0;
            continue;
        }
        /* Insert a fresh chunk after `current` (big enough for this request); a too-small
         * chunk further on stays in the list for later. */
        chunk *fresh = chunk_new(bytes > a->chunk_bytes ? bytes : a->chunk_bytes);
        fresh->next = c->next;
        c->next = fresh;
        a->current = fresh;
    }
}

void *ct_arena_calloc(ct_arena *a, size_t bytes) {
    void *p = ct_arena_alloc(a, bytes);
    memset(p, 0, bytes);
    return p;
}

void ct_arena_reset(ct_arena *a) {
    for (chunk *c = a->first; c && c != a->current->next; c = c->next) POISON(c->data, c->used);
    a->current = a->first;
    a->first->used = 0;
    a->used_before_current = 0;
}

size_t ct_arena_used(const ct_arena *a) { return a->used_before_current + a->current->used; }

size_t ct_arena_capacity(const ct_arena *a) {
    size_t n = 0;
    for (const chunk *c = a->first; c; c = c->next) n += c->capacity;
    return n;
}
