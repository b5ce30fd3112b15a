/* tests/core/test_dist.c — core/dist.h in one process (the default build, and the MPI build run
 * without mpirun): rank 0 of 1, the collectives those of one rank. The ranks' side is tested under
 * mpirun by tests/mpi/run.sh (make test MPI=1). */
#include "../test.h"

#include <string.h>

CT_TEST(core, dist_one_process_is_rank_0_of_1) {
    CHECK(ct_dist_rank() == 0);
    CHECK(ct_dist_world_size() == 1);
    ct_real buf[5] = {1.5f, -2, 0.1f, 3e-8f, 7};
    const ct_real want[5] = {1.5f, -2, 0.1f, 3e-8f, 7};
    CHECK(ct_dist_allreduce_mean(buf, 5) == CT_OK);
    CHECK(!memcmp(buf, want, sizeof buf), "the mean over one rank changed the values");
    double sums[2] = {0.25, 12};
    CHECK(ct_dist_allreduce_sum_f64(sums, 2) == CT_OK && sums[0] == 0.25 && sums[1] == 12);
    CHECK(ct_dist_broadcast(buf, sizeof buf) == CT_OK && !memcmp(buf, want, sizeof buf));
    int row[3] = {4, 5, 6}, out[3] = {0};
    CHECK(ct_dist_gather(row, sizeof row, out) == CT_OK && !memcmp(row, out, sizeof row));
    memset(out, 0, sizeof out);
    CHECK(ct_dist_allgather(row, sizeof row, out) == CT_OK && !memcmp(row, out, sizeof row));
    CHECK(ct_dist_barrier() == CT_OK);
}

CT_TEST(core, dist_check_passes_one_rank_status_through) {
    CHECK(ct_dist_check(CT_OK) == CT_OK);
    ct_set_error(CT_ERR_IO, "data.bin: no such file");
    CHECK(ct_dist_check(CT_ERR_IO) == CT_ERR_IO);
    CHECK(!strcmp(ct_last_error(), "data.bin: no such file"), "%s", ct_last_error());
    ct_clear_error();
}
