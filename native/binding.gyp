{
  "targets": [
    {
      "target_name": "vipfarm_native",
      "sources": [
        "src/os_error.cc",
        "src/ip_family.cc",
        "src/nl_socket.cc",
        "src/nft_batch.cc",
        "src/nft_farm.cc",
        "src/rtnl_addr.cc",
        "src/rtnl_neigh.cc",
        "src/packet_socket.cc",
        "src/responder.cc",
        "src/arp_socket.cc",
        "src/nd_socket.cc",
        "src/frame_socket.cc",
        "src/binding.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_CPP_EXCEPTIONS", "NAPI_VERSION=8"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lnftnl", "-lmnl"]
    }
  ]
}
