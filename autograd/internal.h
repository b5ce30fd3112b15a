/* autograd/internal.h — helpers shared by the op files; not part of the public API. */
#ifndef CTAPE_AUTOGRAD_INTERNAL_H
#define CTAPE_AUTOGRAD_INTERNAL_H

#include "op.h"

struct ct_tape {
    ct_arena *arena;          /* every tape tensor's data and grad, and what ops save */
    /* Tensor headers alternate between two small arenas, one step each: a tensor kept past
     * ct_tape_reset still has its header, and its old step number, for the next step to refuse. */
    ct_arena *headers[2];
    int side;
    uint64_t step;            /* unique over all tapes; a new one at every reset */
    ct_node *nodes;
    int n_nodes, cap_nodes;
    int grad_enabled;
    int backward_passes;      /* since the last reset */
    struct {                  /* anomaly mode: the last op's output, checked when the next op runs */
        const ct_tensor *out;
        const char *op;
        ct_site site;
    } unchecked;
    ct_grad_ready_fn grad_ready; /* ct_tape_on_grad_ready's hook, or NULL */
    void *grad_ready_user;
    unsigned magic;           /* TAPE_MAGIC while alive, TAPE_FREED after ct_tape_free (last: the
                                 allocator reuses the first bytes of a freed block) */
};


#endif
