/* ctape.h — everything a training program needs: #include <ctape.h> and link with -lctape
 * (pkg-config ctape). What lives where:
 *
 *   core/core.h          tensors and shapes, labels, batch sources, the arena, RNG, errors and call
 *                        sites, threads + BLAS, the progress line
 *   core/dist.h          data-parallel ranks over MPI (make MPI=1): rank, world size, collectives
 *   core/plot.h          PNG charts: training curves, confusion matrix, reliability diagram, image
 *                        grids, optimizer paths over contours
 *   core/spec.h          "name:key=value" spec strings (models, optimizers, schedules)
 *   core/vmath.h         vectorisable exp/log, a finiteness test, thread numbers (for op and loss authors)
 *   core/safetensors.h   the safetensors file format, atomic writes
 *   autograd/ops.h       the tape (ct_backward, printing) and every differentiable op, gradcheck
 *   autograd/reference.h the basic ops and layers as plain loops (forward + backward), to read and check
 *   nn/nn.h              ct_model (named parameters), layers, composition, init (patch whitening,
 *                        Dirac), save/load, test-time augmentation
 *   nn/zoo.h             networks by name: mlp, lenet5, vgg_small, resnet20.., vit_tiny
 *   losses/losses.h      the loss zoo, each fused loss with its readable reference, the registry
 *   losses/metrics.h     accuracy, F1, NLL, Brier, ECE, reliability bins, kNN and linear probes
 *   losses/analysis.h    temperature scaling, neural collapse (NC1-NC4), softmax-collapse logit statistics
 *   optim/optim.h        optimizers (Muon and the literature's in optim/literature.h), guards,
 *                        clipping, EMA and airbench's weight average, checkpoints; schedules (optim/schedule.h)
 *   optim/registry.h     optimizers and schedules by name
 *   optim/trainer.h      ct_fit: the training loop with logs, checkpoints, keep-best, Ctrl-C
 *   optim/dist.h         data-parallel training: gradients averaged over the ranks, rank 0's state to all
 *   optim/arena.h        ct_arena_run: losses x seeds x data conditions, runs.csv and table.md
 *   optim/sharpness.h    the Hessian's top eigenvalue and trace (sharpness) by Hessian-vector products
 *   data/data.h          IDX, CIFAR, image folders, the loader (augmentation, alternating flip, two
 *                        views, balanced)
 *   data/conditions.h    long-tailed subsets and label noise
 *
 * Headers for extending ctape, not included here: autograd/op.h (writing an op with its backward),
 * nn/layer.h (writing a layer), optim/optimizer.h (writing an optimizer). */
#ifndef CTAPE_H
#define CTAPE_H

#include "core/core.h"
#include "core/dist.h"
#include "core/plot.h"
#include "core/spec.h"
#include "core/vmath.h"
#include "core/safetensors.h"
#include "autograd/ops.h"
#include "autograd/reference.h"
#include "nn/nn.h"
#include "nn/zoo.h"
#include "losses/losses.h"
#include "losses/metrics.h"
#include "losses/analysis.h"
#include "optim/optim.h"
#include "optim/registry.h"
#include "optim/trainer.h"
#include "optim/dist.h"
#include "optim/arena.h"
#include "optim/probe.h"
#include "optim/sharpness.h"
#include "data/data.h"
#include "data/conditions.h"

#endif
