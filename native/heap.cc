// Tells V8 when the sidecar is quiet enough to give memory back. V8's own memory reducer waits ~8 s after start,
// and after a burst of traffic runs only on some of its own schedules (in the bench's 20 idle seconds after load,
// never), so a sidecar keeps its start-up garbage, and the young generation a burst grew, for seconds to much
// longer. LowMemoryNotification runs full garbage collections that compact, shrink the young generation to its
// minimum and return the freed pages to the system; it is V8's embedder API for this, which Node does not expose to
// JavaScript. malloc_trim then returns the free pages glibc keeps in every thread's arena.

#include <node_api.h>
#include <v8.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "heap.h"

static napi_value ReleaseMemory(napi_env env, napi_callback_info info) {
  (void)info;
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->LowMemoryNotification();
#ifdef __GLIBC__
  malloc_trim(0);
#endif
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  return undefined;
}

extern "C" void heap_init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "releaseMemory", NAPI_AUTO_LENGTH, ReleaseMemory, nullptr, &fn);
  napi_set_named_property(env, exports, "releaseMemory", fn);
}
