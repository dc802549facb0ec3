// The neural-network layer of tapegrad in one include: modules, activations,
// losses, initialisers, optimisers, gradient clipping, schedules, checkpoints
// and metrics.
#pragma once

#include <tapegrad/nn/activations.hpp>
#include <tapegrad/nn/checkpoint.hpp>
#include <tapegrad/nn/clip_grad.hpp>
#include <tapegrad/nn/dropout.hpp>
#include <tapegrad/nn/init.hpp>
#include <tapegrad/nn/layer_norm.hpp>
#include <tapegrad/nn/linear.hpp>
#include <tapegrad/nn/losses.hpp>
#include <tapegrad/nn/metrics.hpp>
#include <tapegrad/nn/mlp.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/nn/optim.hpp>
#include <tapegrad/nn/schedule.hpp>
#include <tapegrad/nn/sequential.hpp>
