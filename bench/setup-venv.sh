#!/usr/bin/env bash
# Sets up bench/.venv with PyTorch, the peer of the book's performance appendix. Not a dependency
# of the book or its tests: only bench/run.sh uses it.
#
# PyTorch's Linux wheel on PyPI is the CUDA build. Installing it with its dependencies would pull
# Triton and the whole CUDA toolkit; instead the wheel is installed without dependencies, then the
# pure-Python packages it imports and the NVIDIA runtime wheels whose shared libraries
# `libtorch_cuda.so` links against (PyTorch loads them at import even on a machine without a GPU).
# CUDA is never used: every workload runs on the CPU.
set -euo pipefail
cd "$(dirname "$0")"
TORCH=2.15.0
python3 -m venv .venv
pip=.venv/bin/pip
$pip install --no-deps "torch==$TORCH"
$pip install numpy safetensors typing_extensions filelock sympy networkx jinja2 fsspec "setuptools>=77.0.3"
# The versions torch 2.15.0 pins in its metadata (Requires-Dist), less triton and cuda-bindings.
$pip install "cuda-toolkit[cublas,cudart,cufft,cufile,cupti,cusolver,cusparse,nvjitlink,nvrtc]==13.2.2" \
  nvidia-cudnn-cu13==9.26.0.51 nvidia-cusparselt-cu13==0.8.1 nvidia-nccl-cu13==2.30.7 \
  nvidia-nvshmem-cu13==3.7.2
.venv/bin/python -c "import torch; print('torch', torch.__version__, 'on the CPU;', torch.get_num_threads(), 'threads by default')"
