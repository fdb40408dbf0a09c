{
  "targets": [
    {
      "target_name": "transferlab",
      "sources": ["src/addon.cc", "src/model.cc", "src/layers.cc", "src/tensors.cc", "src/allocator.cc", "src/layer-timing.cc", "src/augment.cc", "src/gradcam.cc", "src/precision.cc", "src/gather.cc", "src/learning-rate.cc", "src/distributed.cc", "src/distributed-nccl.cc", "src/device.cc", "src/max-pool-relu.cc", "src/few-channel-conv.cc", "src/chunked-forward.cc", "src/few-channel-block.cc", "src/dnnl-conv.cc", "src/dnnl-conv-train.cc", "src/amx.cc", "src/conv-weight-gradient-amx.cc", "src/conv-pool-amx.cc", "src/blocked-stretch.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/find-libtorch.mjs include)"
      ],
      "defines": ["NAPI_VERSION=8", "USE_C10D_GLOO", "USE_DISTRIBUTED", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "<!@(node scripts/find-libtorch.mjs defines)"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-fopenmp", "-Wno-unused-parameter", "-Wno-deprecated-declarations", "-Wno-psabi"],
      "libraries": [
        "-L<!(node scripts/find-libtorch.mjs lib)",
        "-Wl,-rpath,<!(node scripts/find-libtorch.mjs lib)",
        "-ltorch", "-ltorch_cpu", "-lc10", "-fopenmp",
        "<!@(node scripts/find-libtorch.mjs cuda-libs)",
        "<!@(node scripts/find-libtorch.mjs dnnl-libs)"
      ]
    }
  ]
}
