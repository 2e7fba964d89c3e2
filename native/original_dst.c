// Remora's native addon: the original destination of a connection redirected by iptables/nftables NAT, the
// kernel-side TCP relay (tcp_relay.c) and memory release (heap.cc). Node has no API for getsockopt(SO_ORIGINAL_DST), so this reads it from the
// accepted socket's file descriptor.

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/netfilter_ipv4.h>
#include <node_api.h>

#include "heap.h"
#include "tcp_relay.h"

#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

static napi_value throw_errno(napi_env env, const char* what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value code, text, error;
  const char* name = err == ENOENT ? "ENOENT" : err == ENOPROTOOPT ? "ENOPROTOOPT" : err == EBADF ? "EBADF" : "EIO";
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &error);
  napi_value errnoValue;
  napi_create_int32(env, err, &errnoValue);
  napi_set_named_property(env, error, "errno", errnoValue);
  napi_throw(env, error);
  return NULL;
}

// originalDst(fd) -> { address, port, family: 4 | 6 }. Throws with code ENOENT when the connection was not NATed.
static napi_value OriginalDst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, NULL, "originalDst(fd): expected a file descriptor");
    return NULL;
  }
  int32_t fd;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "originalDst(fd): expected a file descriptor");
    return NULL;
  }
  struct sockaddr_storage local;
  socklen_t len = sizeof local;
  if (getsockname(fd, (struct sockaddr*)&local, &len) != 0) return throw_errno(env, "getsockname", errno);

  struct sockaddr_storage dst;
  memset(&dst, 0, sizeof dst);
  len = sizeof dst;
  int rc;
  if (local.ss_family == AF_INET6) {
    // An IPv6 socket carries either real IPv6 traffic (ip6tables) or v4-mapped IPv4 traffic (iptables).
    const struct in6_addr* a = &((struct sockaddr_in6*)&local)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a)) {
      len = sizeof(struct sockaddr_in);
      rc = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len);
    } else {
      rc = getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &len);
    }
  } else if (local.ss_family == AF_INET) {
    len = sizeof(struct sockaddr_in);
    rc = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len);
  } else {
    return throw_errno(env, "not a TCP/IP socket", ENOPROTOOPT);
  }
  if (rc != 0) return throw_errno(env, "getsockopt(SO_ORIGINAL_DST)", errno);

  char text[INET6_ADDRSTRLEN];
  int port;
  int family;
  if (dst.ss_family == AF_INET6) {
    struct sockaddr_in6* s6 = (struct sockaddr_in6*)&dst;
    inet_ntop(AF_INET6, &s6->sin6_addr, text, sizeof text);
    port = ntohs(s6->sin6_port);
    family = 6;
  } else {
    struct sockaddr_in* s4 = (struct sockaddr_in*)&dst;
    inet_ntop(AF_INET, &s4->sin_addr, text, sizeof text);
    port = ntohs(s4->sin_port);
    family = 4;
  }
  napi_value result, address, portValue, familyValue;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &address);
  napi_create_int32(env, port, &portValue);
  napi_create_int32(env, family, &familyValue);
  napi_set_named_property(env, result, "address", address);
  napi_set_named_property(env, result, "port", portValue);
  napi_set_named_property(env, result, "family", familyValue);
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "originalDst", NAPI_AUTO_LENGTH, OriginalDst, NULL, &fn);
  napi_set_named_property(env, exports, "originalDst", fn);
  tcp_relay_init(env, exports);
  heap_init(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
