// SPDX-License-Identifier: MIT
// Private: the default destination of errors met on background threads.
#pragma once

#include <string_view>

namespace cfgreg::detail {

/// Writes "cfgreg: <context><message>" to stderr as one line, in one write. The default
/// of every user-settable error handler, and the fallback when such a handler throws.
void write_default_error(std::string_view message, std::string_view context = {}) noexcept;

}  // namespace cfgreg::detail
