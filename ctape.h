/* ctape.h — everything: #include <ctape.h> and link with -lctape (pkg-config ctape). */
#ifndef CTAPE_H
#define CTAPE_H

#include "core/core.h"
#include "core/plot.h"
#include "core/spec.h"
#include "core/safetensors.h"
#include "autograd/ops.h"
#include "nn/nn.h"
#include "losses/losses.h"
#include "losses/metrics.h"
#include "optim/optim.h"
#include "optim/registry.h"
#include "optim/trainer.h"
#include "data/data.h"
#include "data/conditions.h"

#endif
