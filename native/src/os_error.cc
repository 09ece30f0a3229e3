#include "os_error.h"

#include <cerrno>
#include <cstring>

namespace vipfarm {

OsError::OsError(const std::string& op, int err)
    : std::runtime_error(op + ": " + std::strerror(err)), err_(err) {}

const char* OsError::code() const {
  switch (err_) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ENODEV: return "ENODEV";
    case EEXIST: return "EEXIST";
    case EINVAL: return "EINVAL";
    case EBUSY: return "EBUSY";
    case EACCES: return "EACCES";
    case ENOBUFS: return "ENOBUFS";
    case EMSGSIZE: return "EMSGSIZE";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EAGAIN: return "EAGAIN";
    case ENETDOWN: return "ENETDOWN";
    default: return "";
  }
}

void throwErrno(const std::string& op) { throw OsError(op, errno); }

}  // namespace vipfarm
