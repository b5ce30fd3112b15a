/* core/atomic_file.c — files that are either complete or absent (core/atomic_file.h).
 *
 * Where O_TMPFILE is not supported (EOPNOTSUPP, EISDIR, EINVAL: older kernels, some network and
 * FUSE file systems) or CTAPE_NO_TMPFILE is set in the environment, the file is written under
 * its temporary name from the start. Temporary names are "<path>.tmp-HHHHHHHH-PID-XXXXXX": a tag
 * of this host's name, the writer's pid and a random suffix, so every write first removes the
 * leftovers in its directory of writers on this host that are gone (a kill -9 between creating
 * and renaming): same tag, pid not alive, last modified before this write began. Files are
 * created with mode 0666 rather than mkstemp's 0600, so they get the permissions the user's
 * umask asks for without reading the umask, which cannot be done without briefly changing it. */
#define CT_BUILDING_LIBRARY
#include "atomic_file.h"
#include "core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int ct_write_all(int fd, const void *buf, size_t len) {
    const uint8_t *p = buf;
    while (len) {
        ssize_t k = write(fd, p, len < ((size_t)1 << 30) ? len : (size_t)1 << 30);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            if (k == 0) errno = EIO;
            return -1;
        }
        p += k;
        len -= (size_t)k;
    }
    return 0;
}


/* FNV-1a of this host's name: tells our temporary files from another host's on a shared disk. */
static uint32_t host_tag(void) {
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    uint32_t h = 2166136261u;
    for (const char *c = host; *c; c++) h = (h ^ (uint8_t)*c) * 16777619u;
    return h;
}

#define TEMP_MARK ".tmp-"

/* Is `name` one of our temporary names (the suffix after the last ".tmp-": 8 hex digits, '-',
 * a pid, '-', 6 letters or digits)? *tag and *pid get its parts. */
static int parse_temp_name(const char *name, uint32_t *tag, long *pid) {
    const char *at = NULL;
    for (const char *p = strstr(name, TEMP_MARK); p; p = strstr(p + 1, TEMP_MARK)) at = p;
    if (!at) return 0;
    const char *p = at + strlen(TEMP_MARK);
    uint32_t t = 0;
    for (int i = 0; i < 8; i++, p++) {
        int c = *p, d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return 0;
        t = t << 4 | (uint32_t)d;
    }
    if (*p++ != '-' || *p < '1' || *p > '9') return 0;
    long v = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        if (++digits > 9) return 0;
        else v = v * 10 + (*p - '0');
    if (*p++ != '-') return 0;
    for (int i = 0; i < 6; i++, p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))) return 0;
    if (*p) return 0;
    *tag = t;
    *pid = v;
    return 1;
}

static int before(struct timespec a, struct timespec b) {
    return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

/* Removes our temporary files in `dir` left by writers on this host that are gone. Best effort:
 * nothing here can fail the save. */
static void sweep_stale_temps(const char *dir, struct timespec started) {
    DIR *d = opendir(dir);
    if (!d) return;
    const uint32_t ours = host_tag();
    for (struct dirent *e; (e = readdir(d));) {
        uint32_t tag;
        long pid;
        struct stat st;
        if (!parse_temp_name(e->d_name, &tag, &pid) || tag != ours) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive (or not ours to judge) */
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
        if (before(st.st_mtim, started)) unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

/* The directory holding `path`, malloc'd ("." for a bare name). */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
}

/* A fresh temporary name for `path` into *tmp_out (malloc'd), and, with create, the file made
 * exclusively with mode 0666 (the umask applies; mkstemp's 0600 would survive the rename):
 * returns its descriptor. Without create, returns 0 once the name is made. */
static int temp_name(const char *path, char **tmp_out, int create) {
    static unsigned long counter;
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t len = strlen(path), cap = len + 40;
    char *tmp = malloc(cap);
    *tmp_out = NULL;
    if (!tmp) {
        errno = ENOMEM;
        return -1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ct_rng rng;
    ct_rng_seed(&rng, (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uint64_t)getpid() << 40 ^
                          (uint64_t)__atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) << 20 ^ (uint64_t)(uintptr_t)tmp);
    const uint32_t tag = host_tag();
    for (int attempt = 0; attempt < 100; attempt++) {
        int k = snprintf(tmp, cap, "%s" TEMP_MARK "%08x-%ld-", path, (unsigned)tag, (long)getpid());
        for (int i = 0; i < 6; i++) tmp[k + i] = alphabet[ct_rng_u64(&rng) % (sizeof alphabet - 1)];
        tmp[k + 6] = 0;
        if (!create) {
            *tmp_out = tmp;
            return 0;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            *tmp_out = tmp;
            return fd;
        }
        if (errno != EEXIST) break;
    }
    int e = errno;
    free(tmp);
    errno = e;
    return -1;
}

/* An unnamed file in `dir` (mode 0666 less the umask), or -1 with errno. */
static int open_unnamed(const char *dir) {
    const char *off = getenv("CTAPE_NO_TMPFILE");
    if (off && *off && strcmp(off, "0") != 0) {
        errno = EOPNOTSUPP;
        return -1;
    }
#ifdef O_TMPFILE
    return open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
#else
    errno = EOPNOTSUPP;
    return -1;
#endif
}

/* Gives the unnamed file fd the name `to`: through /proc/self/fd (any user), else AT_EMPTY_PATH
 * (needs CAP_DAC_READ_SEARCH). */
static int link_unnamed(int fd, const char *to) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, to, AT_SYMLINK_FOLLOW) == 0) return 0;
    if (errno != ENOENT && errno != ENOTDIR && errno != EACCES && errno != EPERM) return -1;
    int e = errno;
#ifdef AT_EMPTY_PATH
    if (linkat(fd, "", AT_FDCWD, to, AT_EMPTY_PATH) == 0) return 0;
#endif
    errno = e;
    return -1;
}

/* fsync of the directory holding `path`, so the rename itself is durable. */
static int sync_parent_dir(const char *path) {
    char *dir = dir_of(path);
    if (!dir) {
        errno = ENOMEM;
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    /* Some file systems cannot sync a directory at all (EINVAL): nothing more can be done. */
    return rc != 0 && e != EINVAL ? -1 : 0;
}

/* Names the written, synced unnamed file fd: linked straight to `path` when nothing is there
 * (returns 0), else linked to a fresh temporary name *tmp to be renamed over `path` (returns 1).
 * Returns -1 with errno on failure, and 2 (errno left as linkat's) where unnamed files cannot be
 * named at all (no /proc, no privilege). */
static int name_unnamed(int fd, const char *path, char **tmp) {
    if (link_unnamed(fd, path) == 0) return 0; /* nothing was there: done */
    if (errno != EEXIST) return 2;
    for (int attempt = 0;; attempt++) { /* a temporary name, renamed over `path` by the caller */
        free(*tmp);
        if (temp_name(path, tmp, 0) != 0) return -1;
        if (link_unnamed(fd, *tmp) == 0) return 1;
        if (errno != EEXIST || attempt == 100) {
            int e = errno;
            free(*tmp);
            *tmp = NULL;
            errno = e;
            return -1;
        }
    }
}

int ct_atomic_write_file(const char *path, ct_file_body body, void *ctx) {
    struct timespec started;
    clock_gettime(CLOCK_REALTIME, &started);
    char *tmp = NULL, *dir = dir_of(path);
    const char *stage = "cannot create a temporary file beside it";
    int fd = -1, unnamed = 0;
    if (!dir) {
        errno = ENOMEM;
        goto fail;
    }
    sweep_stale_temps(dir, started);
    fd = open_unnamed(dir);
    unnamed = fd >= 0;
    if (fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) goto fail;
write:
    if (fd < 0 && (fd = temp_name(path, &tmp, 1)) < 0) goto fail;
    stage = "cannot write";
    if (body(fd, ctx) != 0) goto fail;
    stage = "cannot sync";
    if (fsync(fd) != 0) goto fail;
    if (unnamed) {
        stage = "cannot link the written file into its directory";
        int named = name_unnamed(fd, path, &tmp);
        if (named == 0) goto named;
        if (named < 0) goto fail;
        if (named == 2) { /* write again under a temporary name from the start */
            close(fd);
            fd = -1;
            unnamed = 0;
            stage = "cannot create a temporary file beside it";
            goto write;
        }
    }
    stage = "cannot close";
    int closed = close(fd);
    fd = -1;
    if (closed != 0) goto fail;
    stage = "cannot rename the temporary file over it";
    if (rename(tmp, path) != 0) goto fail;
named:
    if (fd >= 0) close(fd); /* linked straight to path: the data is synced, close cannot lose it */
    free(tmp);
    free(dir);
    if (sync_parent_dir(path) != 0)
        return ct_set_error(CT_ERR_IO, "%s: written, but syncing its directory failed: %s", path, strerror(errno));
    return CT_OK;

fail:;
    int e = errno;
    if (fd >= 0) close(fd);
    if (tmp) {
        unlink(tmp);
        ct_set_error(CT_ERR_IO, "%s: %s (%s): %s; nothing was changed", path, stage, tmp, strerror(e));
    } else {
        ct_set_error(CT_ERR_IO, "%s: %s: %s; nothing was changed", path, stage, strerror(e));
    }
    free(tmp);
    free(dir);
    return CT_ERR_IO;
}
