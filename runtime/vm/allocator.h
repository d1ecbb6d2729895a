// The VM's allocator: plain realloc/free with a byte cap. Refusing an allocation makes LuaJIT
// raise its own clean "not enough memory" error, which the procedure sees (and pcall can catch).
#pragma once

#include <cstddef>
#include <cstdint>

namespace tactus::vm {

struct CappedAllocator {
  std::uint64_t limit = 0;  // 0 = no cap
  std::uint64_t used = 0;
  std::uint64_t peak = 0;
  std::uint64_t refusals = 0;
  // Called after each refusal (the VM schedules a collection); may be null.
  void (*on_refusal)(void* arg) = nullptr;
  void* on_refusal_arg = nullptr;
};

// lua_Alloc-compatible; ud is a CappedAllocator*.
void* capped_alloc(void* ud, void* ptr, std::size_t osize, std::size_t nsize);

}  // namespace tactus::vm
