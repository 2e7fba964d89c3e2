{
  "targets": [
    {
      "target_name": "remora_native",
      "sources": ["original_dst.c", "tcp_relay.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
