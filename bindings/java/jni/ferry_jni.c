/*
 * ferry_jni.c — JNI glue between io.ferry.Ferry and the C ABI (ferry.h only; nothing of Ferry's internals).
 *
 * Strings cross as UTF-8 byte arrays encoded on the Java side (JNI's own "modified UTF-8" mangles NUL and characters
 * outside the BMP), copied here into NUL-terminated buffers. A NULL array stays NULL, so the C layer refuses and
 * counts it. Every native method returns the ferry_status as an int; Java turns it into a FerryException.
 * Handles are the C pointers stored in a Java long. Nothing here throws a Java exception except OutOfMemoryError
 * raised by the JVM itself; on allocation failure the call returns FERRY_ERR_INTERNAL.
 */
#include <jni.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/ferry.h"

#define FJ(name) Java_io_ferry_Ferry_##name

/* A NUL-terminated copy of a Java byte[] (NULL stays NULL). *oom is set when the copy failed. */
static char* CopyBytes(JNIEnv* env, jbyteArray a, int* oom) {
  jsize n;
  char* p;
  if (a == NULL) return NULL;
  n = (*env)->GetArrayLength(env, a);
  p = (char*)malloc((size_t)n + 1);
  if (p == NULL) {
    *oom = 1;
    return NULL;
  }
  if (n > 0) (*env)->GetByteArrayRegion(env, a, 0, n, (jbyte*)p);
  p[n] = '\0';
  return p;
}

static ferry_options* O(jlong h) { return (ferry_options*)(intptr_t)h; }
static ferry_client* C(jlong h) { return (ferry_client*)(intptr_t)h; }

static jbyteArray ToBytes(JNIEnv* env, const char* s) {
  jsize n = (jsize)strlen(s);
  jbyteArray a = (*env)->NewByteArray(env, n);
  if (a != NULL && n > 0) (*env)->SetByteArrayRegion(env, a, 0, n, (const jbyte*)s);
  return a;
}

JNIEXPORT jstring JNICALL FJ(nativeVersion)(JNIEnv* env, jclass cls) {
  (void)cls;
  return (*env)->NewStringUTF(env, ferry_version());
}

JNIEXPORT jstring JNICALL FJ(nativeStatusStr)(JNIEnv* env, jclass cls, jint s) {
  (void)cls;
  return (*env)->NewStringUTF(env, ferry_status_str((ferry_status)s)); /* static ASCII text */
}

JNIEXPORT jlong JNICALL FJ(nativeOptionsNew)(JNIEnv* env, jclass cls) {
  (void)env;
  (void)cls;
  return (jlong)(intptr_t)ferry_options_new();
}

JNIEXPORT void JNICALL FJ(nativeOptionsFree)(JNIEnv* env, jclass cls, jlong o) {
  (void)env;
  (void)cls;
  ferry_options_free(O(o));
}

/* which: 0 endpoint, 1 write key, 2 storage path, 3 CA file, 4 PII rules, 5 pinned public key. */
JNIEXPORT jint JNICALL FJ(nativeOptionsSetString)(JNIEnv* env, jclass cls, jlong o, jint which, jbyteArray v) {
  int oom = 0;
  char* s = CopyBytes(env, v, &oom);
  ferry_status st;
  (void)cls;
  if (oom) return FERRY_ERR_INTERNAL;
  switch (which) {
    case 0: st = ferry_options_set_endpoint(O(o), s); break;
    case 1: st = ferry_options_set_write_key(O(o), s); break;
    case 2: st = ferry_options_set_storage_path(O(o), s); break;
    case 3: st = ferry_options_set_ca_file(O(o), s); break;
    case 4: st = ferry_options_set_pii_rules(O(o), s); break;
    case 5: st = ferry_options_set_pinned_public_key(O(o), s); break;
    default: st = FERRY_ERR_INVALID_ARGUMENT; break;
  }
  free(s);
  return st;
}

/* which: 0 flush interval ms (u32), 1 batch size (u32), 2 max storage bytes (u64), 3 max event age ms (u64),
 * 4 durability. Negative or out-of-range values are refused here (Java has no unsigned types). */
JNIEXPORT jint JNICALL FJ(nativeOptionsSetNumber)(JNIEnv* env, jclass cls, jlong o, jint which, jlong v) {
  (void)env;
  (void)cls;
  if (v < 0) return FERRY_ERR_INVALID_ARGUMENT;
  if ((which == 0 || which == 1 || which == 4) && (uint64_t)v > UINT32_MAX) return FERRY_ERR_INVALID_ARGUMENT;
  switch (which) {
    case 0: return ferry_options_set_flush_interval_ms(O(o), (uint32_t)v);
    case 1: return ferry_options_set_batch_size(O(o), (uint32_t)v);
    case 2: return ferry_options_set_max_storage_bytes(O(o), (uint64_t)v);
    case 3: return ferry_options_set_max_event_age_ms(O(o), (uint64_t)v);
    case 4: return ferry_options_set_durability(O(o), (ferry_durability)v);
    default: return FERRY_ERR_INVALID_ARGUMENT;
  }
}

JNIEXPORT jint JNICALL FJ(nativeOptionsSetKey)(JNIEnv* env, jclass cls, jlong o, jbyteArray key) {
  uint8_t buf[64];
  jsize n;
  ferry_status st;
  (void)cls;
  if (key == NULL) return ferry_options_set_encryption_key(O(o), NULL, 0);
  n = (*env)->GetArrayLength(env, key);
  if (n <= 0 || (size_t)n > sizeof buf) return FERRY_ERR_INVALID_ARGUMENT;
  (*env)->GetByteArrayRegion(env, key, 0, n, (jbyte*)buf);
  st = ferry_options_set_encryption_key(O(o), buf, (size_t)n);
  memset(buf, 0, sizeof buf);
  return st;
}

JNIEXPORT jint JNICALL FJ(nativeOptionsSetDefaultConsent)(JNIEnv* env, jclass cls, jlong o, jbyteArray purpose,
                                                          jint state) {
  int oom = 0;
  char* p = CopyBytes(env, purpose, &oom);
  ferry_status st;
  (void)cls;
  if (oom) return FERRY_ERR_INTERNAL;
  st = ferry_options_set_default_consent(O(o), p, (ferry_consent)state);
  free(p);
  return st;
}

JNIEXPORT jint JNICALL FJ(nativeOptionsSetApp)(JNIEnv* env, jclass cls, jlong o, jbyteArray name, jbyteArray version) {
  int oom = 0;
  char* n = CopyBytes(env, name, &oom);
  char* v = CopyBytes(env, version, &oom);
  ferry_status st = oom ? FERRY_ERR_INTERNAL : ferry_options_set_app(O(o), n, v);
  (void)cls;
  free(n);
  free(v);
  return st;
}

/* Takes ownership of o. out[0] receives the client handle. */
JNIEXPORT jint JNICALL FJ(nativeOpen)(JNIEnv* env, jclass cls, jlong o, jlongArray out) {
  ferry_client* c = NULL;
  ferry_status st = ferry_open(O(o), &c);
  jlong h = (jlong)(intptr_t)c;
  (void)cls;
  if (out != NULL && (*env)->GetArrayLength(env, out) >= 1) {
    (*env)->SetLongArrayRegion(env, out, 0, 1, &h);
  } else if (c != NULL) {
    ferry_close(c, 0);
    return FERRY_ERR_INVALID_ARGUMENT;
  }
  return st;
}

static uint32_t Ms(jlong ms) { return ms < 0 ? 0u : (ms > (jlong)UINT32_MAX ? UINT32_MAX : (uint32_t)ms); }

JNIEXPORT jint JNICALL FJ(nativeClose)(JNIEnv* env, jclass cls, jlong h, jlong ms) {
  (void)env;
  (void)cls;
  return ferry_close(C(h), Ms(ms));
}

JNIEXPORT jint JNICALL FJ(nativeTrack)(JNIEnv* env, jclass cls, jlong h, jbyteArray event, jbyteArray props,
                                       jbyteArray purpose) {
  int oom = 0;
  char* e = CopyBytes(env, event, &oom);
  char* p = CopyBytes(env, props, &oom);
  char* u = CopyBytes(env, purpose, &oom);
  ferry_status st = oom ? FERRY_ERR_INTERNAL : ferry_track(C(h), e, p, u);
  (void)cls;
  free(e);
  free(p);
  free(u);
  return st;
}

JNIEXPORT jint JNICALL FJ(nativeScreen)(JNIEnv* env, jclass cls, jlong h, jbyteArray name, jbyteArray props) {
  int oom = 0;
  char* n = CopyBytes(env, name, &oom);
  char* p = CopyBytes(env, props, &oom);
  ferry_status st = oom ? FERRY_ERR_INTERNAL : ferry_screen(C(h), n, p);
  (void)cls;
  free(n);
  free(p);
  return st;
}

JNIEXPORT jint JNICALL FJ(nativeIdentify)(JNIEnv* env, jclass cls, jlong h, jbyteArray user_id, jbyteArray traits) {
  int oom = 0;
  char* u = CopyBytes(env, user_id, &oom);
  char* t = CopyBytes(env, traits, &oom);
  ferry_status st = oom ? FERRY_ERR_INTERNAL : ferry_identify(C(h), u, t);
  (void)cls;
  free(u);
  free(t);
  return st;
}

JNIEXPORT jint JNICALL FJ(nativeReset)(JNIEnv* env, jclass cls, jlong h) {
  (void)env;
  (void)cls;
  return ferry_reset(C(h));
}

JNIEXPORT jint JNICALL FJ(nativeSetConsent)(JNIEnv* env, jclass cls, jlong h, jbyteArray purpose, jint state) {
  int oom = 0;
  char* p = CopyBytes(env, purpose, &oom);
  ferry_status st = oom ? FERRY_ERR_INTERNAL : ferry_set_consent(C(h), p, (ferry_consent)state);
  (void)cls;
  free(p);
  return st;
}

JNIEXPORT jint JNICALL FJ(nativeGetConsent)(JNIEnv* env, jclass cls, jlong h, jbyteArray purpose) {
  int oom = 0;
  char* p = CopyBytes(env, purpose, &oom);
  ferry_consent c = ferry_get_consent(C(h), p);
  (void)cls;
  free(p);
  return c;
}

JNIEXPORT jint JNICALL FJ(nativeFlush)(JNIEnv* env, jclass cls, jlong h, jlong ms) {
  (void)env;
  (void)cls;
  return ferry_flush(C(h), Ms(ms));
}

JNIEXPORT jint JNICALL FJ(nativeForget)(JNIEnv* env, jclass cls, jlong h, jlong ms) {
  (void)env;
  (void)cls;
  return ferry_forget(C(h), Ms(ms));
}

/* which: 0 export_local, 1 stats_json. out[0] receives the UTF-8 bytes. */
JNIEXPORT jint JNICALL FJ(nativeJson)(JNIEnv* env, jclass cls, jlong h, jint which, jobjectArray out) {
  char* s = NULL;
  ferry_status st;
  (void)cls;
  st = which == 0 ? ferry_export_local(C(h), out ? &s : NULL) : ferry_stats_json(C(h), out ? &s : NULL);
  if (st == FERRY_OK && s != NULL) {
    jbyteArray a = ToBytes(env, s);
    if (a == NULL) {
      st = FERRY_ERR_INTERNAL;
    } else {
      (*env)->SetObjectArrayElement(env, out, 0, a);
    }
  }
  ferry_free(s);
  return st;
}
