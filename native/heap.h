// V8 heap control that Node has no JavaScript API for (heap.cc): adds its functions to the addon's exports.
#ifndef REMORA_HEAP_H
#define REMORA_HEAP_H
#include <node_api.h>
#ifdef __cplusplus
extern "C" {
#endif
void heap_init(napi_env env, napi_value exports);
#ifdef __cplusplus
}
#endif
#endif
