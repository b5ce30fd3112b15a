/* tests/core/test_build_mpi.c — the Makefile's MPI flavour (make MPI=1) seen with make -n: mpicc,
 * CT_MPI and build/mpi there, none of them in the default build; make test-mpi runs tests/mpi/run.sh;
 * scripts/test-summary --mpi names the two parts of make test MPI=1. */
#include "../test.h"

#include <string.h>

/* make -n in the scratch build root `root`, outside the make that runs this suite, for the default
 * flavour whatever flavour runs it (SANITIZE=1 or MPI=1 reaches this make through the environment; a later MPI=1 in args wins). */
static int make_dry(const char *root, const char *args, char *out, size_t len) {
    char cmd[3000];
    snprintf(cmd, sizeof cmd,
             "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u CTAPE_THREADS make -n --no-print-directory -C '%s' "
             "BUILDROOT='%s' SANITIZE=0 PRECISION=32 NATIVE=0 MPI=0 %s",
             ct_test_repository(), root, args);
    return ct_test_run_capture(cmd, out, len);
}

CT_TEST(build, mpi_flavour_only_with_mpi_1) {
    static char out[1 << 20];
    char root[1100], lib[1200];
    snprintf(root, sizeof root, "%s", ct_test_tmpdir());
    snprintf(lib, sizeof lib, "%s/libctape.a", root);
    char args[1400];
    snprintf(args, sizeof args, "'%s'", lib);
    int status = make_dry(root, args, out, sizeof out);
    CHECK(status == 0, "exit %d: %s", status, out);
    CHECK(strstr(out, "core/dist.c") && !strstr(out, "mpicc") && !strstr(out, "-DCT_MPI"),
          "the default build must not need MPI: %.2000s", out);
    snprintf(lib, sizeof lib, "%s/mpi/libctape.a", root);
    snprintf(args, sizeof args, "MPI=1 '%s'", lib);
    status = make_dry(root, args, out, sizeof out);
    CHECK(status == 0, "exit %d: %s", status, out);
    CHECK(strstr(out, "mpicc ") && strstr(out, "-DCT_MPI") && strstr(out, "/mpi/obj/core/dist.o"), "%.2000s", out);
    status = make_dry(root, "MPI=1 test-mpi", out, sizeof out);
    CHECK(status == 0 && strstr(out, "bash tests/mpi/run.sh ") && strstr(out, "/mpi/tests/mpi_check"), "exit %d: %.2000s",
          status, out);
}

CT_TEST(runner, summary_of_the_mpi_parts) {
    const char *dir = ct_test_tmpdir();
    char a[1100], b[1100];
    snprintf(a, sizeof a, "%s/suite", dir), snprintf(b, sizeof b, "%s/mpirun", dir);
    FILE *f = fopen(a, "w");
    CHECK(f != NULL);
    fputs("passed=300 failed=0 skipped=4\n", f), fclose(f);
    CHECK((f = fopen(b, "w")) != NULL);
    fputs("passed=32 failed=0 skipped=0\n", f), fclose(f);
    char cmd[4096], out[4096];
    snprintf(cmd, sizeof cmd, "bash '%s/scripts/test-summary' --mpi '%s' '%s'", ct_test_repository(), a, b);
    const int status = ct_test_run_capture(cmd, out, sizeof out);
    CHECK(status == 0, "exit %d: %s", status, out);
    CHECK(strstr(out, "float32 suite (MPI build)") && strstr(out, "mpirun tests") && !strstr(out, "float64"), "%s", out);
    CHECK(strstr(out, "332 passed"), "%s", out);
}
