/*
 * ferry_jni.c — JNI glue between io.ferry.Ferry and the C ABI (ferry.h only; nothing of Ferry's internals).
 *
 * Strings cross as UTF-8 byte arrays encoded on the Java side (JNI's own "modified UTF-8" mangles NUL and characters
 * outside the BMP), copied here into NUL-terminated buffers. A NULL array stays NULL, so the C layer refuses and
 * counts it. Every native method returns the ferry_status as an int; Java turns it into a FerryException.
 * Handles are the C pointers stored in a Java long. Nothing here throws a Java exception except OutOfMemoryError
 * raised by the JVM itself; on allocation failure the call returns FERRY_ERR_INTERNAL.
 *
 * Callbacks (the app's Transport and LogHandler) run on Ferry's own threads. Such a thread is attached to the JVM
 * once, as a daemon thread, the first time it calls into Java, and detached when it exits (a pthread key whose
 * destructor calls DetachCurrentThread); a thread the JVM already knows is used as it is. The Java objects are held
 * by global references. Each callback runs in its own local-reference frame (a long-lived attached thread would
 * otherwise pile them up), and a Java exception never crosses back into C: the Java side catches everything, and a
 * pending exception found here anyway is cleared and becomes FERRY_ERR_NETWORK (transport) or is dropped (log).
 * The classes and methods are looked up once in JNI_OnLoad, where the app's class loader is in effect (FindClass
 * on a native thread would see only the system class loader, as on Android).
 */
#include <jni.h>
#include <pthread.h>
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

/* which: 0 endpoint, 1 write key, 2 storage path, 3 CA file, 4 PII rules, 5 pinned public key, 6 data dir,
 * 7 consent language, 8 notice-changed purposes. */
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
    case 6: st = ferry_options_set_data_dir(O(o), s); break;
    case 7: st = ferry_options_set_consent_language(O(o), s); break;
    case 8: st = ferry_options_set_notice_changed_purposes(O(o), s); break;
    default: st = FERRY_ERR_INVALID_ARGUMENT; break;
  }
  free(s);
  return st;
}

/* which: 0 flush interval ms (u32), 1 batch size (u32), 2 max storage bytes (u64), 3 max event age ms (u64),
 * 4 durability, 5 session timeout ms (u32), 6 reset unreadable buffer (0/1). Negative or out-of-range values are
 * refused here (Java has no unsigned types). */
JNIEXPORT jint JNICALL FJ(nativeOptionsSetNumber)(JNIEnv* env, jclass cls, jlong o, jint which, jlong v) {
  (void)env;
  (void)cls;
  if (v < 0) return FERRY_ERR_INVALID_ARGUMENT;
  if ((which == 0 || which == 1 || which == 4 || which == 5) && (uint64_t)v > UINT32_MAX) {
    return FERRY_ERR_INVALID_ARGUMENT;
  }
  switch (which) {
    case 0: return ferry_options_set_flush_interval_ms(O(o), (uint32_t)v);
    case 1: return ferry_options_set_batch_size(O(o), (uint32_t)v);
    case 2: return ferry_options_set_max_storage_bytes(O(o), (uint64_t)v);
    case 3: return ferry_options_set_max_event_age_ms(O(o), (uint64_t)v);
    case 4: return ferry_options_set_durability(O(o), (ferry_durability)v);
    case 5: return ferry_options_set_session_timeout_ms(O(o), (uint32_t)v);
    case 6: return v > 1 ? FERRY_ERR_INVALID_ARGUMENT : ferry_options_set_reset_unreadable_buffer(O(o), (int)v);
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

JNIEXPORT jint JNICALL FJ(nativeOptionsSetHoldPending)(JNIEnv* env, jclass cls, jlong o, jbyteArray purpose,
                                                       jlong max_ms) {
  int oom = 0;
  char* p = CopyBytes(env, purpose, &oom);
  ferry_status st;
  (void)cls;
  if (oom) return FERRY_ERR_INTERNAL;
  st = max_ms < 0 ? FERRY_ERR_INVALID_ARGUMENT : ferry_options_set_hold_pending(O(o), p, (uint64_t)max_ms);
  free(p);
  return st;
}

/* The options that take a name and a version. which: 0 app (name, version), 1 notice (id, version). */
JNIEXPORT jint JNICALL FJ(nativeOptionsSetPair)(JNIEnv* env, jclass cls, jlong o, jint which, jbyteArray name,
                                                jbyteArray version) {
  int oom = 0;
  char* n = CopyBytes(env, name, &oom);
  char* v = CopyBytes(env, version, &oom);
  ferry_status st = FERRY_ERR_INTERNAL;
  (void)cls;
  if (!oom) {
    st = which == 0   ? ferry_options_set_app(O(o), n, v)
         : which == 1 ? ferry_options_set_notice(O(o), n, v)
                      : FERRY_ERR_INVALID_ARGUMENT;
  }
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

/* Hands a string Ferry gave out (NULL: none) to out[0] as UTF-8 bytes, frees it, and returns st (FERRY_ERR_INTERNAL
 * when the Java array cannot be made). */
static ferry_status HandOut(JNIEnv* env, jobjectArray out, char* s, ferry_status st) {
  if (s != NULL) {
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

/* which: 0 export_local, 1 stats_json. out[0] receives the UTF-8 bytes. */
JNIEXPORT jint JNICALL FJ(nativeJson)(JNIEnv* env, jclass cls, jlong h, jint which, jobjectArray out) {
  char* s = NULL;
  ferry_status st;
  (void)cls;
  st = which == 0 ? ferry_export_local(C(h), out ? &s : NULL) : ferry_stats_json(C(h), out ? &s : NULL);
  return HandOut(env, out, s, st);
}

JNIEXPORT jint JNICALL FJ(nativeSetMinor)(JNIEnv* env, jclass cls, jlong h, jint minor) {
  (void)env;
  (void)cls;
  return ferry_set_minor(C(h), minor);
}

JNIEXPORT jint JNICALL FJ(nativeSetConsentGuardian)(JNIEnv* env, jclass cls, jlong h, jbyteArray purpose, jint state) {
  int oom = 0;
  char* p = CopyBytes(env, purpose, &oom);
  ferry_status st = oom ? FERRY_ERR_INTERNAL : ferry_set_consent_guardian(C(h), p, (ferry_consent)state);
  (void)cls;
  free(p);
  return st;
}

/* The requests filed from the device. which: 0 ferry_request (arg: the kind), 1 ferry_request_status (arg: the
 * receipt), 2 ferry_request_copy (arg: the receipt), 3 ferry_request_verification_code (no arg). out[0] receives the
 * UTF-8 bytes of the string handed out, whatever the status (ferry_request gives its receipt on TIMEOUT and NETWORK
 * too); it stays null when none was. */
JNIEXPORT jint JNICALL FJ(nativeRequest)(JNIEnv* env, jclass cls, jlong h, jint which, jbyteArray arg, jlong ms,
                                         jobjectArray out) {
  int oom = 0;
  char* a = CopyBytes(env, arg, &oom);
  char* s = NULL;
  ferry_status st;
  (void)cls;
  if (oom) return FERRY_ERR_INTERNAL;
  switch (which) {
    case 0: st = ferry_request(C(h), a, Ms(ms), out ? &s : NULL); break;
    case 1: st = ferry_request_status(C(h), a, Ms(ms), out ? &s : NULL); break;
    case 2: st = ferry_request_copy(C(h), a, Ms(ms), out ? &s : NULL); break;
    case 3: st = ferry_request_verification_code(C(h), Ms(ms), out ? &s : NULL); break;
    default: st = FERRY_ERR_INVALID_ARGUMENT; break;
  }
  free(a);
  return HandOut(env, out, s, st); /* ferry_request gives its receipt on TIMEOUT and NETWORK too */
}

/* ---------------------------------------------------------------------------------------------------------------
 * Callbacks: the app's Transport and LogHandler, called from Ferry's threads.
 * ------------------------------------------------------------------------------------------------------------- */

static JavaVM* g_vm;
static pthread_key_t g_detach_key;
static int g_callbacks_ready; /* JNI_OnLoad found the classes and methods below */
static jclass g_ferry_class;  /* global reference to io.ferry.Ferry */
static jmethodID g_dispatch_send;
static jmethodID g_dispatch_log;
static jfieldID g_resp_status;
static jfieldID g_resp_retry_after;
static jfieldID g_resp_body;

/* Runs when an attached Ferry thread exits (the value is only set on threads this file attached). */
static void DetachAtExit(void* vm) { (*(JavaVM*)vm)->DetachCurrentThread((JavaVM*)vm); }

#if defined(__ANDROID__)
#define FERRY_ATTACH_ENV(env) (&(env)) /* Android's jni.h takes JNIEnv** */
#else
#define FERRY_ATTACH_ENV(env) ((void**)&(env))
#endif

/* The JNIEnv of the calling thread, attaching it (once, as a daemon) if the JVM does not know it; NULL if that is
 * impossible (the JVM is shutting down). */
static JNIEnv* CallbackEnv(void) {
  JNIEnv* env = NULL;
  JavaVMAttachArgs args;
  jint r;
  if (g_vm == NULL) return NULL;
  r = (*g_vm)->GetEnv(g_vm, (void**)&env, JNI_VERSION_1_6);
  if (r == JNI_OK) return env;
  if (r != JNI_EDETACHED) return NULL;
  args.version = JNI_VERSION_1_6;
  args.name = (char*)"ferry-native";
  args.group = NULL;
  if ((*g_vm)->AttachCurrentThreadAsDaemon(g_vm, FERRY_ATTACH_ENV(env), &args) != JNI_OK) return NULL;
  if (pthread_setspecific(g_detach_key, g_vm) != 0) {
    /* No way to detach at exit: detach now rather than leave a dead thread registered with the JVM. */
    (*g_vm)->DetachCurrentThread(g_vm);
    return NULL;
  }
  return env;
}

/* Clears a pending Java exception; returns 1 if there was one. */
static int ClearException(JNIEnv* env) {
  if (!(*env)->ExceptionCheck(env)) return 0;
  (*env)->ExceptionClear(env);
  return 1;
}

static jbyteArray NewBytes(JNIEnv* env, const void* p, size_t n) {
  jbyteArray a;
  if (n > (size_t)INT32_MAX) return NULL;
  a = (*env)->NewByteArray(env, (jsize)n);
  if (a != NULL && n > 0) (*env)->SetByteArrayRegion(env, a, 0, (jsize)n, (const jbyte*)p);
  return a;
}

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM* vm, void* reserved) {
  JNIEnv* env = NULL;
  jclass ferry;
  jclass resp;
  (void)reserved;
  g_vm = vm;
  if ((*vm)->GetEnv(vm, (void**)&env, JNI_VERSION_1_6) != JNI_OK) return JNI_ERR;
  if (pthread_key_create(&g_detach_key, DetachAtExit) != 0) return JNI_VERSION_1_6; /* callbacks unavailable */
  ferry = (*env)->FindClass(env, "io/ferry/Ferry");
  resp = ferry == NULL ? NULL : (*env)->FindClass(env, "io/ferry/Transport$Response");
  if (ferry == NULL || resp == NULL) {
    ClearException(env);
    return JNI_VERSION_1_6;
  }
  g_dispatch_send = (*env)->GetStaticMethodID(env, ferry, "dispatchSend",
                                              "(Lio/ferry/Transport;[B[B[B[BI)Lio/ferry/Transport$Response;");
  g_dispatch_log = (*env)->GetStaticMethodID(env, ferry, "dispatchLog", "(Lio/ferry/LogHandler;I[B)V");
  g_resp_status = (*env)->GetFieldID(env, resp, "status", "I");
  g_resp_retry_after = (*env)->GetFieldID(env, resp, "retryAfterSeconds", "J");
  g_resp_body = (*env)->GetFieldID(env, resp, "body", "[B");
  g_ferry_class = (jclass)(*env)->NewGlobalRef(env, ferry);
  if (ClearException(env) || g_dispatch_send == NULL || g_dispatch_log == NULL || g_resp_status == NULL ||
      g_resp_retry_after == NULL || g_resp_body == NULL || g_ferry_class == NULL) {
    return JNI_VERSION_1_6;
  }
  g_callbacks_ready = 1;
  return JNI_VERSION_1_6;
}

/* ferry_transport_send_fn over a global reference to an io.ferry.Transport. */
static ferry_status SendThroughJava(const ferry_http_request* req, ferry_http_response* resp, void* user) {
  JNIEnv* env = CallbackEnv();
  ferry_status st = FERRY_ERR_NETWORK;
  jbyteArray method, url, headers, body;
  jobject answer;
  size_t hlen = 0, i;
  char* joined;
  if (env == NULL || req == NULL || resp == NULL || (*env)->ExceptionCheck(env)) return FERRY_ERR_NETWORK;
  if ((*env)->PushLocalFrame(env, 8) != 0) {
    ClearException(env);
    return FERRY_ERR_NETWORK;
  }
  /* The headers as one byte array, NUL between them (no header holds a NUL). */
  for (i = 0; req->headers != NULL && req->headers[i] != NULL; i++) hlen += strlen(req->headers[i]) + 1;
  joined = (char*)malloc(hlen + 1);
  if (joined != NULL) {
    char* w = joined;
    for (i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
      size_t n = strlen(req->headers[i]);
      memcpy(w, req->headers[i], n);
      w[n] = '\0';
      w += n + 1;
    }
    method = NewBytes(env, req->method ? req->method : "POST", strlen(req->method ? req->method : "POST"));
    url = req->url ? NewBytes(env, req->url, strlen(req->url)) : NULL;
    headers = NewBytes(env, joined, hlen);
    body = NewBytes(env, req->body, req->body ? req->body_len : 0);
    free(joined);
    if (method != NULL && url != NULL && headers != NULL && body != NULL) {
      answer = (*env)->CallStaticObjectMethod(env, g_ferry_class, g_dispatch_send, (jobject)user, method, url, headers,
                                              body, (jint)(req->timeout_ms > INT32_MAX ? INT32_MAX : req->timeout_ms));
      if (!ClearException(env) && answer != NULL) {
        jlong retry = (*env)->GetLongField(env, answer, g_resp_retry_after);
        jbyteArray rbody = (jbyteArray)(*env)->GetObjectField(env, answer, g_resp_body);
        resp->status = (int)(*env)->GetIntField(env, answer, g_resp_status);
        resp->retry_after_s = retry < 0 ? 0u : (retry > (jlong)UINT32_MAX ? UINT32_MAX : (uint32_t)retry);
        resp->body = NULL;
        resp->body_len = 0;
        st = FERRY_OK;
        if (rbody != NULL) {
          jsize n = (*env)->GetArrayLength(env, rbody);
          resp->body = (uint8_t*)malloc(n > 0 ? (size_t)n : 1);
          if (resp->body == NULL) {
            st = FERRY_ERR_NETWORK; /* the answer cannot be handed over: retried later */
          } else {
            if (n > 0) (*env)->GetByteArrayRegion(env, rbody, 0, n, (jbyte*)resp->body);
            resp->body_len = (size_t)n;
          }
        }
      }
    }
  }
  ClearException(env); /* an OutOfMemoryError from NewByteArray, say */
  (*env)->PopLocalFrame(env, NULL);
  return st;
}

/* Releases the transport's global reference; called once by libferry, from the thread that closes the client or
 * frees the options (a Java thread in this binding). */
static void ReleaseGlobal(void* ref) {
  JNIEnv* env = CallbackEnv();
  if (env != NULL && ref != NULL) (*env)->DeleteGlobalRef(env, (jobject)ref);
}

JNIEXPORT jint JNICALL FJ(nativeOptionsSetTransport)(JNIEnv* env, jclass cls, jlong o, jobject transport) {
  jobject ref;
  ferry_status st;
  (void)cls;
  if (O(o) == NULL || transport == NULL) return FERRY_ERR_INVALID_ARGUMENT;
  if (!g_callbacks_ready) return FERRY_ERR_INTERNAL;
  ref = (*env)->NewGlobalRef(env, transport);
  if (ref == NULL) return FERRY_ERR_INTERNAL;
  st = ferry_options_set_transport(O(o), SendThroughJava, ref, ReleaseGlobal);
  if (st != FERRY_OK) (*env)->DeleteGlobalRef(env, ref); /* not taken by the options */
  return st;
}

/* The log callback over a global reference to an io.ferry.LogHandler. */
static void LogThroughJava(int level, const char* msg, void* user) {
  JNIEnv* env = CallbackEnv();
  jbyteArray text;
  /* A Java thread with an exception pending (an OutOfMemoryError in a native method) may call no Java method. */
  if (env == NULL || msg == NULL || (*env)->ExceptionCheck(env)) return;
  if ((*env)->PushLocalFrame(env, 2) != 0) {
    ClearException(env);
    return;
  }
  text = NewBytes(env, msg, strlen(msg));
  if (text != NULL) (*env)->CallStaticVoidMethod(env, g_ferry_class, g_dispatch_log, (jobject)user, (jint)level, text);
  ClearException(env);
  (*env)->PopLocalFrame(env, NULL);
}

/* ferry_options_set_log_callback has no release hook: the global reference goes back to Java (out[0]) and Java
 * releases it with nativeLogRelease once no line can come any more. */
JNIEXPORT jint JNICALL FJ(nativeOptionsSetLog)(JNIEnv* env, jclass cls, jlong o, jobject handler, jlongArray out) {
  jobject ref;
  jlong h;
  ferry_status st;
  (void)cls;
  if (O(o) == NULL || handler == NULL || out == NULL || (*env)->GetArrayLength(env, out) < 1) {
    return FERRY_ERR_INVALID_ARGUMENT;
  }
  if (!g_callbacks_ready) return FERRY_ERR_INTERNAL;
  ref = (*env)->NewGlobalRef(env, handler);
  if (ref == NULL) return FERRY_ERR_INTERNAL;
  st = ferry_options_set_log_callback(O(o), LogThroughJava, ref);
  if (st != FERRY_OK) {
    (*env)->DeleteGlobalRef(env, ref);
    return st;
  }
  h = (jlong)(intptr_t)ref;
  (*env)->SetLongArrayRegion(env, out, 0, 1, &h);
  return FERRY_OK;
}

JNIEXPORT void JNICALL FJ(nativeLogRelease)(JNIEnv* env, jclass cls, jlong h) {
  (void)cls;
  if (h != 0) (*env)->DeleteGlobalRef(env, (jobject)(intptr_t)h);
}
