{
  "targets": [
    {
      "target_name": "remora_native",
      "sources": ["original_dst.c", "tcp_relay.c", "heap.cc"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
