// Every kernel failure is an OsError: the operation that failed plus errno, so the JS
// exception reads "apply vipfarm_web: Operation not permitted" and carries code EPERM.
#pragma once
#include <stdexcept>
#include <string>

namespace vipfarm {

class OsError : public std::runtime_error {
 public:
  OsError(const std::string& op, int err);
  int err() const { return err_; }
  /** "EPERM", "ENOENT", ... (empty when unknown) */
  const char* code() const;

 private:
  int err_;
};

/** throws OsError(op, errno) */
[[noreturn]] void throwErrno(const std::string& op);

}  // namespace vipfarm
