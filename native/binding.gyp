{
  "targets": [
    {
      "target_name": "remora_native",
      "sources": ["original_dst.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
