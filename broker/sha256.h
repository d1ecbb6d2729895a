// SHA-256 (FIPS 180-4), self-contained: the journal hashes a run's source and configuration so
// that a resume can tell whether either changed. Not OpenSSL: tactus must not load libcrypto at
// start-up (tests/binary_links_test.cpp), and this is a few dozen lines.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace tactus::broker {

// Incremental form, for hashing something that arrives in parts (several files, say).
class Sha256 {
 public:
  Sha256();
  void update(std::string_view data);
  // The digest as 64 lowercase hex digits. Call once; the object is spent afterwards.
  std::string hex_digest();

 private:
  void compress(const unsigned char* block);

  std::array<std::uint32_t, 8> h_;
  std::array<unsigned char, 64> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t total_bytes_ = 0;
};

// sha-256 of data as 64 lowercase hex digits.
std::string sha256_hex(std::string_view data);

}  // namespace tactus::broker
