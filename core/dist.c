/* core/dist.c — core/dist.h over Open MPI (CT_MPI), or the single-process semantics. */
#include "dist.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#ifdef CT_MPI
#include <mpi.h>
#endif

int ct_dist_built_with_mpi(void) {
#ifdef CT_MPI
    return 1;
#else
    return 0;
#endif
}

#ifdef CT_MPI

static int started_here; /* ct_dist_init called MPI_Init_thread, so ct_dist_finalize ends MPI */

/* 1 when MPI runs (initialised and not finalised): otherwise the single-process semantics. */
static int mpi_on(void) {
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    if (init) MPI_Finalized(&fin);
    return init && !fin;
}

static int fail(const char *call, int rc) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "MPI error %d", rc);
    return ct_set_error(CT_ERR_IO, "%s on rank %d of %d: %s", call, ct_dist_rank(), ct_dist_world_size(), text);
}

int ct_dist_init(int *argc, char ***argv) {
    if (mpi_on()) return CT_OK;
    int provided = 0;
    /* Only the calling thread talks to MPI; OpenMP and the loader's thread never do. */
    const int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return ct_set_error(CT_ERR_IO, "MPI_Init_thread failed (error %d)", rc);
    started_here = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    return CT_OK;
}

void ct_dist_finalize(void) {
    if (started_here && mpi_on()) MPI_Finalize();
    started_here = 0;
}

int ct_dist_rank(void) {
    int r = 0;
    if (mpi_on()) MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int ct_dist_world_size(void) {
    int n = 1;
    if (mpi_on()) MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

#ifdef CT_PRECISION_64
#define MPI_REAL_TYPE MPI_DOUBLE
#else
#define MPI_REAL_TYPE MPI_FLOAT
#endif

/* MPI counts are ints: long buffers go in pieces of at most CHUNK elements. */
enum { CHUNK = 1 << 28 };

int ct_dist_allreduce_mean(ct_real *buf, size_t n) {
    const int world = ct_dist_world_size();
    if (world == 1) return CT_OK;
    for (size_t at = 0; at < n; at += CHUNK) {
        const int len = (int)(n - at < CHUNK ? n - at : CHUNK);
        const int rc = MPI_Allreduce(MPI_IN_PLACE, buf + at, len, MPI_REAL_TYPE, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return fail("MPI_Allreduce", rc);
    }
    const ct_real inv = (ct_real)1 / (ct_real)world;
    for (size_t i = 0; i < n; i++) buf[i] *= inv;
    return CT_OK;
}

struct ct_dist_request {
    MPI_Request request;
};

int ct_dist_iallreduce_sum(ct_real *buf, size_t n, ct_dist_request **req) {
    *req = NULL;
    if (ct_dist_world_size() == 1) return CT_OK;
    if (n > INT_MAX)
        return ct_set_error(CT_ERR_VALUE, "ct_dist_iallreduce_sum: %zu elements are more than one MPI call carries (%d)",
                            n, INT_MAX);
    ct_dist_request *r = malloc(sizeof *r);
    if (!r) return ct_set_error(CT_ERR_MEMORY, "ct_dist_iallreduce_sum: out of memory");
    const int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_REAL_TYPE, MPI_SUM, MPI_COMM_WORLD, &r->request);
    if (rc != MPI_SUCCESS) {
        free(r);
        return fail("MPI_Iallreduce", rc);
    }
    *req = r;
    return CT_OK;
}

int ct_dist_test(ct_dist_request *req) {
    int done = 1;
    if (req && MPI_Test(&req->request, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) done = 0;
    return done;
}

int ct_dist_wait(ct_dist_request *req) {
    if (!req) return CT_OK;
    const int rc = MPI_Wait(&req->request, MPI_STATUS_IGNORE);
    free(req);
    return rc == MPI_SUCCESS ? CT_OK : fail("MPI_Wait", rc);
}

int ct_dist_allreduce_sum_f64(double *buf, size_t n) {
    if (ct_dist_world_size() == 1) return CT_OK;
    for (size_t at = 0; at < n; at += CHUNK) {
        const int len = (int)(n - at < CHUNK ? n - at : CHUNK);
        const int rc = MPI_Allreduce(MPI_IN_PLACE, buf + at, len, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return fail("MPI_Allreduce", rc);
    }
    return CT_OK;
}

int ct_dist_broadcast(void *buf, size_t bytes) {
    if (ct_dist_world_size() == 1) return CT_OK;
    for (size_t at = 0; at < bytes; at += CHUNK) {
        const int len = (int)(bytes - at < CHUNK ? bytes - at : CHUNK);
        const int rc = MPI_Bcast((char *)buf + at, len, MPI_BYTE, 0, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return fail("MPI_Bcast", rc);
    }
    return CT_OK;
}

int ct_dist_gather(const void *row, size_t bytes, void *out) {
    const int world = ct_dist_world_size();
    if (world == 1) {
        if (out != row) memmove(out, row, bytes);
        return CT_OK;
    }
    if (bytes > INT_MAX)
        return ct_set_error(CT_ERR_VALUE, "ct_dist_gather: rows of %zu bytes are more than one MPI call carries (%d)",
                            bytes, INT_MAX);
    const int rc = MPI_Gather(row, (int)bytes, MPI_BYTE, out, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? CT_OK : fail("MPI_Gather", rc);
}

int ct_dist_allgather(const void *row, size_t bytes, void *out) {
    const int world = ct_dist_world_size();
    if (world == 1) {
        if (out != row) memmove(out, row, bytes);
        return CT_OK;
    }
    if (bytes > INT_MAX)
        return ct_set_error(CT_ERR_VALUE, "ct_dist_allgather: rows of %zu bytes are more than one MPI call carries (%d)",
                            bytes, INT_MAX);
    const int rc = MPI_Allgather(row, (int)bytes, MPI_BYTE, out, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? CT_OK : fail("MPI_Allgather", rc);
}

int ct_dist_barrier(void) {
    if (ct_dist_world_size() == 1) return CT_OK;
    const int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? CT_OK : fail("MPI_Barrier", rc);
}

int ct_dist_check(int status) {
    const int world = ct_dist_world_size(), rank = ct_dist_rank();
    if (world == 1) return status;
    /* the lowest failing rank (world when none failed), then its code and message from it */
    int mine = status != CT_OK ? rank : world, first = world;
    int rc = MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return fail("MPI_Allreduce", rc);
    if (first == world) return CT_OK;
    struct {
        int code;
        char message[960];
    } what = {status, ""};
    if (rank == first) snprintf(what.message, sizeof what.message, "%s", ct_last_error());
    rc = MPI_Bcast(&what, (int)sizeof what, MPI_BYTE, first, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return fail("MPI_Bcast", rc);
    /* an error the ranks agreed on already keeps its one prefix */
    int r = -1, n = -1, at = 0;
    if (sscanf(what.message, "rank %d of %d: %n", &r, &n, &at) == 2 && at > 0 && n == world)
        return ct_set_error(what.code, "%s", what.message);
    return ct_set_error(what.code, "rank %d of %d: %s", first, world, what.message);
}

#else /* one process */

int ct_dist_init(int *argc, char ***argv) {
    (void)argc, (void)argv;
    return CT_OK;
}
void ct_dist_finalize(void) {}
int ct_dist_rank(void) { return 0; }
int ct_dist_world_size(void) { return 1; }
int ct_dist_allreduce_mean(ct_real *buf, size_t n) {
    (void)buf, (void)n;
    return CT_OK;
}
int ct_dist_allreduce_sum_f64(double *buf, size_t n) {
    (void)buf, (void)n;
    return CT_OK;
}
int ct_dist_broadcast(void *buf, size_t bytes) {
    (void)buf, (void)bytes;
    return CT_OK;
}
int ct_dist_iallreduce_sum(ct_real *buf, size_t n, ct_dist_request **req) {
    (void)buf, (void)n;
    *req = NULL;
    return CT_OK;
}
int ct_dist_test(ct_dist_request *req) {
    (void)req;
    return 1;
}
int ct_dist_wait(ct_dist_request *req) {
    (void)req;
    return CT_OK;
}
int ct_dist_gather(const void *row, size_t bytes, void *out) {
    if (out != row) memmove(out, row, bytes);
    return CT_OK;
}
int ct_dist_allgather(const void *row, size_t bytes, void *out) {
    if (out != row) memmove(out, row, bytes);
    return CT_OK;
}
int ct_dist_barrier(void) { return CT_OK; }
int ct_dist_check(int status) { return status; }

#endif
