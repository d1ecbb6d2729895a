#include "runtime/vm/allocator.h"

#include <cstdlib>

namespace tactus::vm {
namespace {

void refuse(CappedAllocator* a) {
  ++a->refusals;
  if (a->on_refusal) a->on_refusal(a->on_refusal_arg);
}

}  // namespace

void* capped_alloc(void* ud, void* ptr, std::size_t osize, std::size_t nsize) {
  auto* a = static_cast<CappedAllocator*>(ud);
  // LuaJIT passes osize as the old block's size (0 for a new block when ptr is null).
  const std::uint64_t old_size = ptr ? osize : 0;
  if (nsize == 0) {
    std::free(ptr);
    a->used -= old_size;
    return nullptr;
  }
  if (nsize > old_size && a->limit != 0 && a->used - old_size + nsize > a->limit) {
    refuse(a);
    return nullptr;
  }
  void* p = std::realloc(ptr, nsize);
  if (!p) {
    refuse(a);
    return nullptr;
  }
  a->used = a->used - old_size + nsize;
  if (a->used > a->peak) a->peak = a->used;
  return p;
}

}  // namespace tactus::vm
