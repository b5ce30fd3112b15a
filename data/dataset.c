/* data/dataset.c — what every format shares: freeing a dataset, subsets, a train/validation
 * split, and per-channel statistics for normalisation. */
#include "data.h"

#include <stdlib.h>

void ct_dataset_free(ct_dataset *d) {
    if (!d) return;
    if (d->class_names)
        for (int c = 0; c < d->classes; c++) free(d->class_names[c]);
    free(d->class_names);
    free(d->images);
    free(d->labels);
    free(d);
}
