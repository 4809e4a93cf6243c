/* The FastCDC chunker's gear hash scan: see gear.c. */
#ifndef SHOAL_GEAR_H
#define SHOAL_GEAR_H
#include <node_api.h>

napi_value gear_scan (napi_env env, napi_callback_info info);

#endif
