{
  "targets": [
    {
      "target_name": "libvirt_binding",
      "product_name": "libvirt_binding",
      "sources": [
        "src/binding.cc",
        "src/errors.cc",
        "src/events.cc",
        "src/connection.cc",
        "src/domain.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "<!@(pkg-config --cflags libvirt)"],
      "libraries": ["<!@(pkg-config --libs libvirt)"]
    }
  ]
}
