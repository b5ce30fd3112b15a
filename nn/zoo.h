/* nn/zoo.h — networks by name, as the loss registry does for losses:
 *
 *     ct_module *net = ct_model_parse(m, "resnet20:width=32", CT_SHAPE(3, 32, 32), 10);
 *
 * builds the network's layers into m (with m's seed) and returns the top module, whose forward
 * maps a batch (N, C, H, W) of images, or (N, D) of vectors, to logits (N, classes). Parameter
 * names are those of the PyTorch module each network is written after (tests/reference/gen_zoo.py
 * holds every one), so the state_dict of that module, saved as safetensors, loads with
 * ct_model_load, and a ctape model saved with ct_model_save loads into it.
 *
 *   mlp        flatten, then per hidden width: linear, activation (relu|gelu|tanh), dropout when
 *              dropout > 0; then linear to the classes. Parameters fc1, fc2, ..., fcK (the names of
 *              examples/mnist_mlp.c, whose network is mlp's default). Takes any input: an image is
 *              flattened.
 *   lenet5     LeNet-5 as commonly written for 28x28 MNIST in PyTorch, in its modern form (ReLU and
 *              max pooling; activation=tanh, pool=avg give the 1998 choices): conv1 6@5x5 padding 2,
 *              pool 2, conv2 16@5x5, pool 2, fc1 120, fc2 84, fc3 classes. padding=0 with a
 *              32x32 input is the original (and the PyTorch CIFAR tutorial's) net. Images of at
 *              least 12x12 (16x16 with padding=0).
 *   vgg_small  examples/cifar10_cnn.c's net (bench W3): 3 x [conv 3x3 padding 1 without bias, batch
 *              norm, ReLU, max pool 2] with width, 2·width, 4·width channels (conv1..3, bn1..3), then
 *              fc. Images of at least 8x8.
 *   resnet20, resnet32, resnet44, resnet56, resnet110
 *              the CIFAR ResNets of He et al. 2016 (sec. 4.2): conv 3x3 (width channels), batch
 *              norm, ReLU, three stages of n basic blocks (depth 6n + 2) with width, 2·width,
 *              4·width channels, the second and third starting with stride 2; shortcut option A
 *              (identity, subsampled x[:, :, ::2, ::2] and zero-padded in channels, no
 *              parameters); global average pool; linear. Names and init (Kaiming-normal convs and
 *              linear weight) as the common PyTorch version (akamaster/pytorch_resnet_cifar10):
 *              conv1, bn1, layer1.0.conv1, ..., linear.
 *   vit_tiny   a Vision Transformer (Dosovitskiy et al. 2021): patch embedding (conv with kernel =
 *              stride = patch), a class token (pool=cls) or mean pooling (pool=mean) over the tokens,
 *              a learned position embedding, depth pre-LN encoder layers with
 *              torch.nn.TransformerEncoderLayer's names (layers.i.self_attn, .linear1, .linear2,
 *              .norm1, .norm2; GELU, no dropout), a final layer norm and the head. Width, heads and
 *              MLP ratio are ViT-Ti's (192, 3, 4); depth 6 rather than 12 and patch 4 suit 32x32
 *              images trained from scratch on a CPU. The patch must divide the image.
 *
 * ct_model_list prints every name with its parameters, defaults and ranges. Errors are core/spec.h's
 * (an unknown name lists the names and suggests the nearest, an unknown key lists the keys, a value
 * out of range is named) and an input the network cannot take names the problem; then nothing is
 * added to the model. */
#ifndef CTAPE_NN_ZOO_H
#define CTAPE_NN_ZOO_H

#include "nn.h"
#include "../core/spec.h"

#include <stdio.h>

/* Builds the named network into m (whose seed the caller set) for inputs of shape `input`: (C, H, W)
 * for images or (D) for flat vectors, and `classes` outputs. Returns the top module (logits
 * (N, classes)), or NULL with ct_last_error() set (CT_ERR_VALUE) for a bad spec or an input the
 * network cannot take (lenet5 on 3x8x8 images, resnet20 on flat vectors). */
ct_module *ct_model_parse(ct_model *m, const char *spec, ct_shape input, int classes);
/* Every name with its parameters, defaults and ranges. */
void ct_model_list(FILE *out);
/* The canonical spec with every parameter ("resnet20:width=16"), which ct_model_parse reads back to
 * the same network. CT_OK, or CT_ERR_VALUE for a bad spec or a buffer too small for it. */
int ct_model_describe(const char *spec, char *buf, size_t len);

#ifndef CT_BUILDING_LIBRARY
#define ct_model_parse(...) CT_SITE_CALL_CLEARING(ct_model_parse, __VA_ARGS__)
#define ct_model_list(...) CT_SITE_CALL_VOID(ct_model_list, __VA_ARGS__)
#define ct_model_describe(...) CT_SITE_CALL_CLEARING(ct_model_describe, __VA_ARGS__)
#endif

#endif
