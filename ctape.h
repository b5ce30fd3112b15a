/* ctape.h — everything: #include <ctape.h> and link with -lctape (pkg-config ctape). */
#ifndef CTAPE_H
#define CTAPE_H

#include "core/tensor.h"
#include "core/safetensors.h"
#include "autograd/ops.h"
#include "nn/nn.h"
#include "losses/losses.h"
#include "optim/optim.h"
#include "data/data.h"

#endif
