// A shared library loaded on its first use (dlopen) rather than at start-up, so a process that
// never needs it does not map it: each library a process maps costs it resident memory (its
// symbol tables and relocations), whether it calls it or not. The functions keep their names
// and types: declare them with EF_LAZY_FUNCTION in the file that calls them, and calls there
// go through the library loaded on demand. A library that cannot be loaded is an error naming
// it, its Debian package and what needed it.
#pragma once

#include <atomic>
#include <mutex>

namespace edgeflow {

class LazyLibrary {
 public:
  // soname: "libsqlite3.so.0"; package: the Debian package that has it; purpose: what it is
  // for, in the error ("the link spool").
  // constexpr: declared constinit, a library and its functions are ready before any static
  // initializer of another file calls one of them.
  constexpr LazyLibrary(const char* soname, const char* package, const char* purpose)
      : soname_(soname), package_(package), purpose_(purpose) {}
  // Loads the library if it is not yet; throws std::runtime_error when it cannot be.
  void load();
  // The symbol's address; throws std::runtime_error when the library or symbol is missing.
  void* symbol(const char* name);

 private:
  const char* soname_;
  const char* package_;
  const char* purpose_;
  std::once_flag once_;
  void* handle_ = nullptr;
  // dlopen's reason, when it failed. A fixed buffer: no destructor to run at exit while a
  // library's own threads may still call through this object.
  char error_[256] = {};
};

// The address of one function of a LazyLibrary, looked up on first use and kept.
template <typename F>
class LazySymbol {
 public:
  constexpr LazySymbol(LazyLibrary& library, const char* name) : library_(&library), name_(name) {}

 protected:
  F get() const {
    F f = fn_.load(std::memory_order_acquire);
    if (!f) {
      f = reinterpret_cast<F>(library_->symbol(name_));
      fn_.store(f, std::memory_order_release);
    }
    return f;
  }

 private:
  LazyLibrary* library_;
  const char* name_;
  mutable std::atomic<F> fn_{nullptr};
};

template <typename Fn>
class LazyFunction;

template <typename R, typename... A>
class LazyFunction<R (*)(A...)> : public LazySymbol<R (*)(A...)> {
 public:
  using LazySymbol<R (*)(A...)>::LazySymbol;
  R operator()(A... args) const { return this->get()(args...); }
};

// A C function with variable arguments (printf-like): the fixed ones, then any others.
template <typename R, typename... A>
class LazyFunction<R (*)(A..., ...)> : public LazySymbol<R (*)(A..., ...)> {
 public:
  using LazySymbol<R (*)(A..., ...)>::LazySymbol;
  template <typename... V>
  R operator()(A... args, V... more) const {
    return this->get()(args..., more...);
  }
};

namespace lazy_detail {
// The function's type without its attributes (warn_unused_result, nonnull...), which a
// template argument would drop with a warning.
template <typename R, typename... A>
auto plain(R (*)(A...)) -> R (*)(A...);
template <typename R, typename... A>
auto plain(R (*)(A..., ...)) -> R (*)(A..., ...);
}  // namespace lazy_detail

}  // namespace edgeflow

// Declares `name` (a C function of `library`, a constinit LazyLibrary) as a function object of the
// same type that loads the library on its first call; unqualified calls in the enclosing namespace
// then use it.
#define EF_LAZY_FUNCTION(library, name)                                                       \
  constinit const ::edgeflow::LazyFunction<decltype(::edgeflow::lazy_detail::plain(&::name))> \
      name {                                                                                  \
    library, #name                                                                            \
  }
