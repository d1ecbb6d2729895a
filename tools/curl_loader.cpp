// libcurl, loaded when the first HTTP request is made rather than when tactus starts.
//
// Linking libcurl pulls some 30 shared libraries (OpenSSL, GnuTLS, Kerberos, LDAP, ...) into
// every process, and the dynamic loader's work on them costs milliseconds at each start: more
// than a whole jailed run. Most runs make no HTTP request, so this file defines the curl_*
// functions tactus uses, with libcurl's own signatures, and forwards each to libcurl.so.4,
// opened with dlopen on first use, which also runs curl_global_init once. The callers include
// <curl/curl.h> (through tools/curl_handles.h) as usual.
#define CURL_DISABLE_TYPECHECK 1  // we define curl_easy_setopt; the checking macro must not
#include <curl/curl.h>
#include <dlfcn.h>

#include <cstdarg>
#include <mutex>

namespace {

// libcurl's ABI has been .so.4 since 2006; Debian 12's libcurl4 ships it.
constexpr const char* kLibcurl = "libcurl.so.4";

struct Curl {
  void* handle = nullptr;
  CURLcode (*global_init)(long) = nullptr;
  CURL* (*easy_init)() = nullptr;
  void (*easy_cleanup)(CURL*) = nullptr;
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...) = nullptr;
  CURLcode (*easy_perform)(CURL*) = nullptr;
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...) = nullptr;
  const char* (*easy_strerror)(CURLcode) = nullptr;
  curl_slist* (*slist_append)(curl_slist*, const char*) = nullptr;
  void (*slist_free_all)(curl_slist*) = nullptr;
  void (*free)(void*) = nullptr;
  time_t (*getdate)(const char*, const time_t*) = nullptr;
  CURLU* (*url)() = nullptr;
  void (*url_cleanup)(CURLU*) = nullptr;
  CURLUcode (*url_set)(CURLU*, CURLUPart, const char*, unsigned int) = nullptr;
  CURLUcode (*url_get)(CURLU*, CURLUPart, char**, unsigned int) = nullptr;
  const char* (*url_strerror)(CURLUcode) = nullptr;
  bool ok = false;
};

template <class F>
bool resolve(void* h, const char* name, F& f) {
  f = reinterpret_cast<F>(::dlsym(h, name));
  return f != nullptr;
}

// Loaded once; every pointer is set, or ok is false and each call below fails cleanly.
const Curl& curl() {
  static Curl c;
  static std::once_flag once;
  std::call_once(once, [] {
    c.handle = ::dlopen(kLibcurl, RTLD_NOW | RTLD_LOCAL);
    if (!c.handle) return;
    void* h = c.handle;
    c.ok = resolve(h, "curl_global_init", c.global_init) &&
           resolve(h, "curl_easy_init", c.easy_init) &&
           resolve(h, "curl_easy_cleanup", c.easy_cleanup) &&
           resolve(h, "curl_easy_setopt", c.easy_setopt) &&
           resolve(h, "curl_easy_perform", c.easy_perform) &&
           resolve(h, "curl_easy_getinfo", c.easy_getinfo) &&
           resolve(h, "curl_easy_strerror", c.easy_strerror) &&
           resolve(h, "curl_slist_append", c.slist_append) &&
           resolve(h, "curl_slist_free_all", c.slist_free_all) && resolve(h, "curl_free", c.free) &&
           resolve(h, "curl_getdate", c.getdate) && resolve(h, "curl_url", c.url) &&
           resolve(h, "curl_url_cleanup", c.url_cleanup) && resolve(h, "curl_url_set", c.url_set) &&
           resolve(h, "curl_url_get", c.url_get) && resolve(h, "curl_url_strerror", c.url_strerror);
    // libcurl's one-time set-up (TLS back end and the like), before any handle exists.
    if (c.ok) c.ok = c.global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  });
  return c;
}

}  // namespace

extern "C" {

// Null when libcurl cannot be loaded: the callers report "cannot start an HTTP request".
CURL* curl_easy_init() {
  return curl().ok ? curl().easy_init() : nullptr;
}

void curl_easy_cleanup(CURL* h) {
  if (curl().ok) curl().easy_cleanup(h);
}

// libcurl reads the one argument by the option's type range (its own rule, lib/setopt.c):
// long below CURLOPTTYPE_OBJECTPOINT, a pointer (data or function) below CURLOPTTYPE_OFF_T,
// curl_off_t below CURLOPTTYPE_BLOB, a pointer from there on.
CURLcode curl_easy_setopt(CURL* h, CURLoption option, ...) {
  if (!curl().ok) return CURLE_FAILED_INIT;
  va_list ap;
  va_start(ap, option);
  CURLcode rc;
  if (option < CURLOPTTYPE_OBJECTPOINT)
    rc = curl().easy_setopt(h, option, va_arg(ap, long));
  else if (option < CURLOPTTYPE_OFF_T)
    rc = curl().easy_setopt(h, option, va_arg(ap, void*));
  else if (option < CURLOPTTYPE_BLOB)
    rc = curl().easy_setopt(h, option, va_arg(ap, curl_off_t));
  else
    rc = curl().easy_setopt(h, option, va_arg(ap, void*));
  va_end(ap);
  return rc;
}

CURLcode curl_easy_perform(CURL* h) {
  return curl().ok ? curl().easy_perform(h) : CURLE_FAILED_INIT;
}

// Every CURLINFO takes one pointer to where the answer goes.
CURLcode curl_easy_getinfo(CURL* h, CURLINFO info, ...) {
  if (!curl().ok) return CURLE_FAILED_INIT;
  va_list ap;
  va_start(ap, info);
  const CURLcode rc = curl().easy_getinfo(h, info, va_arg(ap, void*));
  va_end(ap);
  return rc;
}

const char* curl_easy_strerror(CURLcode code) {
  return curl().ok ? curl().easy_strerror(code) : "libcurl.so.4 could not be loaded";
}

curl_slist* curl_slist_append(curl_slist* list, const char* s) {
  return curl().ok ? curl().slist_append(list, s) : nullptr;
}

void curl_slist_free_all(curl_slist* list) {
  if (curl().ok) curl().slist_free_all(list);
}

void curl_free(void* p) {
  if (curl().ok) curl().free(p);
}

time_t curl_getdate(const char* text, const time_t* unused) {
  return curl().ok ? curl().getdate(text, unused) : -1;
}

CURLU* curl_url() {
  return curl().ok ? curl().url() : nullptr;
}

void curl_url_cleanup(CURLU* u) {
  if (curl().ok) curl().url_cleanup(u);
}

CURLUcode curl_url_set(CURLU* u, CURLUPart part, const char* content, unsigned int flags) {
  return curl().ok ? curl().url_set(u, part, content, flags) : CURLUE_OUT_OF_MEMORY;
}

CURLUcode curl_url_get(CURLU* u, CURLUPart part, char** out, unsigned int flags) {
  return curl().ok ? curl().url_get(u, part, out, flags) : CURLUE_OUT_OF_MEMORY;
}

const char* curl_url_strerror(CURLUcode code) {
  return curl().ok ? curl().url_strerror(code) : "libcurl.so.4 could not be loaded";
}

}  // extern "C"
