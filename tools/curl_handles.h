// RAII for libcurl's handles: the one HTTP client (tools/http_client.cpp) and http.request's URL
// parsing (tools/http_tool.cpp). libcurl's global initialisation happens once,
// when tools/curl_loader.cpp opens the library. Include only where curl is used.
#pragma once

#include <curl/curl.h>

#include <memory>
#include <string>

#include "tools/interrupt.h"

namespace tactus::tools {

struct CurlDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlEasy = std::unique_ptr<CURL, CurlDeleter>;
using CurlUrl = std::unique_ptr<CURLU, CurlDeleter>;
using CurlList = std::unique_ptr<curl_slist, CurlDeleter>;

// Appends line to list (curl_slist_append returns the new head, or null and leaves it).
inline void curl_list_append(CurlList& list, const std::string& line) {
  if (curl_slist* next = curl_slist_append(list.get(), line.c_str())) {
    list.release();
    list.reset(next);
  }
}

// Ends the transfer (CURLE_ABORTED_BY_CALLBACK) once the process is interrupted: SIGINT or
// SIGTERM must not wait for a slow server (tools/interrupt.h).
inline int abort_if_interrupted(void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return interrupted() ? 1 : 0;
}
inline void abort_on_interrupt(CURL* h) {
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, abort_if_interrupted);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
}

}  // namespace tactus::tools
