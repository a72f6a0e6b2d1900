// SPDX-License-Identifier: MIT
// The error type and its formatting.
#include "cfgreg/error.hpp"

#include <cstdio>

#include "error_sink.hpp"

namespace cfgreg {

const char* to_string(errc code) noexcept {
    switch (code) {
        case errc::missing:
            return "missing";
        case errc::type_mismatch:
            return "type mismatch";
        case errc::out_of_range:
            return "out of range";
        case errc::parse_error:
            return "parse error";
        case errc::io_error:
            return "i/o error";
        case errc::invalid_key:
            return "invalid key";
        case errc::invalid_argument:
            return "invalid argument";
        case errc::rejected:
            return "rejected";
        case errc::callback_failed:
            return "callback failed";
        case errc::watch_degraded:
            return "watch degraded";
    }
    return "unknown error";
}

std::string source_position::to_string() const {
    return source_view{source, line, column}.to_string();
}

std::string source_view::to_string() const {
    std::string out(source);
    if (line != 0) {
        out += ':';
        out += std::to_string(line);
        if (column != 0) {
            out += ':';
            out += std::to_string(column);
        }
    }
    return out;
}

namespace {

std::string with_position(const std::string& message, const source_position& where) {
    if (where.source.empty() && where.line == 0) return message;
    return where.to_string() + ": " + message;
}

}  // namespace

error::error(errc code, std::string message, source_position where)
    : std::runtime_error(with_position(message, where)),
      code_(code),
      message_(std::move(message)),
      where_(std::move(where)) {}

void detail::write_default_error(std::string_view message, std::string_view context) noexcept {
    // One fprintf: stdio locks the stream for the call, so concurrent lines do not mix.
    std::fprintf(stderr, "cfgreg: %.*s%.*s\n", static_cast<int>(context.size()), context.data(),
                 static_cast<int>(message.size()), message.data());
}

}  // namespace cfgreg
