/* bench/loader.c — the CIFAR-10 input pipeline: random crop 32 with padding 4, horizontal flip
 * and normalisation (CIFAR-10's channel mean and std), batches of 128, shuffled.
 *
 * usage: loader [CIFAR_BIN] [EPOCHS] [PREFETCH THREADS]
 * Data: the CIFAR-10 binary file when it exists (../shared/data/cifar10/data_batch_sub.bin,
 * 10,000 records), else 10,000 random images of 3×32×32. For each of prefetch off/on and 1/2
 * threads, one warm-up epoch then EPOCHS timed epochs (default 20) of ct_loader_next with
 * nothing else in the loop: the loader's own throughput. One key=value line per setting.
 * PREFETCH and THREADS pick one setting (bench/run.sh runs each in its own process: OpenMP's
 * idle workers of a 2-thread setting would otherwise spin beside the next one). */
#include <ctape.h>

#include <stdlib.h>

static ct_dataset *random_cifar_shaped(int n) {
    ct_dataset *d = calloc(1, sizeof *d);
    d->n = n, d->channels = 3, d->height = 32, d->width = 32, d->classes = 10;
    d->images = malloc((size_t)n * 3072);
    d->labels = malloc((size_t)n * sizeof(int));
    ct_rng r;
    ct_rng_seed(&r, 1);
    for (size_t k = 0; k < (size_t)n * 3072; k++) d->images[k] = (uint8_t)(ct_rng_u64(&r) >> 56);
    for (int i = 0; i < n; i++) d->labels[i] = (int)ct_rng_int(&r, 0, 10);
    snprintf(d->source, sizeof d->source, "random");
    return d;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "../shared/data/cifar10/data_batch_sub.bin";
    int epochs = argc > 2 ? atoi(argv[2]) : 20;
    if (epochs < 1) epochs = 1;
    FILE *probe = fopen(path, "rb");
    ct_dataset *d = NULL;
    const char *data = "cifar10";
    if (probe) {
        fclose(probe);
        d = ct_cifar10_load(path, NULL);
        if (!d) {
            fprintf(stderr, "loader: %s\n", ct_last_error());
            return 1;
        }
    } else {
        d = random_cifar_shaped(10000), data = "random";
    }

    int only = argc > 4, only_prefetch = only ? atoi(argv[3]) : 0, only_threads = only ? atoi(argv[4]) : 0;
    for (int prefetch = 0; prefetch <= 1; prefetch++)
        for (int threads = 1; threads <= 2; threads++) {
            if (only && (prefetch != only_prefetch || threads != only_threads)) continue;
            ct_set_threads(threads);
            ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 128, .shuffle = 1, .seed = 1, .crop_padding = 4,
                                                      .hflip = 1, .normalize = 1,
                                                      .mean = {0.4914f, 0.4822f, 0.4465f},
                                                      .std = {0.2470f, 0.2435f, 0.2616f}, .prefetch = prefetch));
            ct_batch b;
            double check = 0;
            while (ct_loader_next(l, &b)) check += b.x->data[0];
            long batches = 0, samples = 0;
            double start = ct_time_now();
            for (int e = 0; e < epochs; e++)
                while (ct_loader_next(l, &b)) batches++, samples += b.n, check += b.x->data[b.x->size - 1];
            double seconds = ct_time_now() - start;
            printf("workload=loader data=%s n=%d prefetch=%d threads=%d batches_per_s=%.1f samples_per_s=%.0f "
                   "seconds=%.3f epochs=%d check=%.3g\n",
                   data, d->n, prefetch, threads, batches / seconds, samples / seconds, seconds, epochs, check);
            fflush(stdout);
            ct_loader_free(l);
        }
    ct_dataset_free(d);
    return 0;
}
