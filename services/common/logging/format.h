#pragma once

#include <fmt/format.h>

#include "absl/strings/string_view.h"

// Debian's Abseil has its own string_view; let spdlog/fmt print it.
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename Context>
  auto format(absl::string_view s, Context& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(s.data(), s.size()), ctx);
  }
};
