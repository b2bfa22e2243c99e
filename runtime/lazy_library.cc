#include "runtime/lazy_library.h"

#include <dlfcn.h>

#include <cstdio>
#include <stdexcept>
#include <string>

namespace edgeflow {

void LazyLibrary::load() {
  std::call_once(once_, [this] {
    handle_ = dlopen(soname_, RTLD_NOW | RTLD_LOCAL);
    if (!handle_) {
      const char* e = dlerror();
      std::snprintf(error_, sizeof error_, "%s", e ? e : "unknown dlopen failure");
    }
  });
  if (!handle_)
    throw std::runtime_error(std::string("cannot load ") + soname_ + ", needed for " + purpose_ +
                             ": " + error_ + " (install it: apt-get install " + package_ + ")");
}

void* LazyLibrary::symbol(const char* name) {
  load();
  dlerror();
  void* p = dlsym(handle_, name);
  if (!p)
    throw std::runtime_error(std::string(soname_) + " has no " + name + " (needed for " + purpose_ +
                             "): is it an older version than edgeflow was built for?");
  return p;
}

}  // namespace edgeflow
