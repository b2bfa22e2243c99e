// resultDigest of IEXEC.md: sha256 of one file, or keccak256 over the sha256 of a folder's
// top-level regular files sorted by name.
#include <algorithm>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "iexec/app.h"

namespace edgeflow::iexec {

namespace fs = std::filesystem;

namespace {

crypto::Hash32 sha256_of(const std::string& path) {
  try {
    return crypto::sha256_file(path);
  } catch (const crypto::CryptoError& e) {
    throw AppError(e.what());
  }
}

}  // namespace

crypto::Hash32 digest_path(const std::string& path) {
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) {
    throw AppError("cannot digest " + path + ": " +
                   (ec ? ec.message() : std::string("no such file or folder")));
  }
  if (fs::is_regular_file(st)) return sha256_of(path);
  if (!fs::is_directory(st)) {
    throw AppError("cannot digest " + path + ": neither a regular file nor a folder");
  }
  // Symlinks, sub-folders and special files inside the folder are not part of the digest:
  // only what iExec uploads (top-level regular files) counts, and a link never pulls in a
  // file from elsewhere on the machine.
  std::vector<std::string> names;
  fs::directory_iterator it(path, ec), end;
  if (ec) throw AppError("cannot list " + path + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) throw AppError("cannot list " + path + ": " + ec.message());
    std::error_code sec;
    if (it->symlink_status(sec).type() == fs::file_type::regular && !sec) {
      names.push_back(it->path().filename().string());
    }
  }
  if (ec) throw AppError("cannot list " + path + ": " + ec.message());
  std::sort(names.begin(), names.end());
  crypto::Packed packed;
  for (const std::string& name : names) packed.add(sha256_of((fs::path(path) / name).string()));
  return packed.keccak();
}

crypto::Hash32 digest_files(const std::vector<std::pair<std::string, std::string>>& files,
                            bool folder) {
  if (!folder) {
    if (files.size() != 1) {
      throw AppError("digest_files: a single-file result holds exactly one file, got " +
                     std::to_string(files.size()));
    }
    return crypto::sha256(files.front().second);
  }
  crypto::Packed packed;
  for (const auto& [name, bytes] : files) packed.add(crypto::sha256(bytes));
  return packed.keccak();
}

}  // namespace edgeflow::iexec
