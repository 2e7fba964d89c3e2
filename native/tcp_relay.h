// The kernel-side TCP relay (tcp_relay.c): adds its functions to the addon's exports.
#ifndef REMORA_TCP_RELAY_H
#define REMORA_TCP_RELAY_H
#include <node_api.h>
void tcp_relay_init(napi_env env, napi_value exports);
#endif
