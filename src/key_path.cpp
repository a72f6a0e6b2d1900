// SPDX-License-Identifier: MIT
// Parsing and printing key paths.
#include "cfgreg/key_path.hpp"

#include <algorithm>
#include <cstdint>

#include "text.hpp"

namespace cfgreg {

void detail::append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

std::strong_ordering operator<=>(const key_path::segment& a, const key_path::segment& b) noexcept {
    if (a.is_index_ != b.is_index_)
        return a.is_index_ ? std::strong_ordering::less : std::strong_ordering::greater;
    if (a.is_index_) return a.index_ <=> b.index_;
    return a.name_.compare(b.name_) <=> 0;
}

std::strong_ordering operator<=>(const key_path& a, const key_path& b) noexcept {
    return std::lexicographical_compare_three_way(a.segments_.begin(), a.segments_.end(),
                                                  b.segments_.begin(), b.segments_.end());
}

namespace {

bool is_bare_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

class path_parser {
  public:
    explicit path_parser(std::string_view text) : text_(text) {}

    result<key_path> run() {
        key_path path;
        skip_space();
        if (done()) return path;
        for (;;) {
            std::string name;
            if (!parse_key(name)) return fail("expected a key");
            path.push_key(std::move(name));
            skip_space();
            while (!done() && peek() == '[') {
                ++pos_;
                std::size_t index = 0;
                const std::size_t start = pos_;
                while (!done() && peek() >= '0' && peek() <= '9') {
                    if (index > (SIZE_MAX - 9) / 10) return fail("array index is too large");
                    index = index * 10 + static_cast<std::size_t>(peek() - '0');
                    ++pos_;
                }
                if (pos_ == start || done() || peek() != ']') return fail("expected `[digits]`");
                ++pos_;
                path.push_index(index);
                skip_space();
            }
            if (done()) return path;
            if (peek() != '.') return fail("expected `.`, `[` or the end of the key");
            ++pos_;
            skip_space();
        }
    }

  private:
    bool done() const { return pos_ >= text_.size(); }
    char peek() const { return text_[pos_]; }
    void skip_space() {
        while (!done() && (peek() == ' ' || peek() == '\t'))
            ++pos_;
    }

    failure fail(std::string_view what) const {
        std::string message = "invalid key path `";
        message += text_;
        message += "`: ";
        message += what;
        message += " at offset ";
        message += std::to_string(pos_);
        return failure{errc::invalid_key, std::move(message), {}};
    }

    bool parse_key(std::string& out) {
        if (done()) return false;
        if (peek() == '\'') {
            const std::size_t end = text_.find('\'', pos_ + 1);
            if (end == std::string_view::npos) return false;
            out.assign(text_.substr(pos_ + 1, end - pos_ - 1));
            pos_ = end + 1;
            return true;
        }
        if (peek() == '"') return parse_basic(out);
        const std::size_t start = pos_;
        while (!done() && is_bare_char(peek()))
            ++pos_;
        out.assign(text_.substr(start, pos_ - start));
        return pos_ != start;
    }

    bool parse_basic(std::string& out) {
        ++pos_;
        while (!done()) {
            const char c = text_[pos_++];
            if (c == '"') return true;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (done()) return false;
            const char e = text_[pos_++];
            switch (e) {
                case 'b':
                    out += '\b';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case '"':
                    out += '"';
                    break;
                case '\\':
                    out += '\\';
                    break;
                case 'u':
                case 'U': {
                    const std::size_t digits = e == 'u' ? 4 : 8;
                    if (text_.size() - pos_ < digits) return false;
                    std::uint32_t cp = 0;
                    for (std::size_t i = 0; i < digits; ++i) {
                        const char h = text_[pos_++];
                        cp <<= 4;
                        if (h >= '0' && h <= '9')
                            cp |= static_cast<std::uint32_t>(h - '0');
                        else if (h >= 'a' && h <= 'f')
                            cp |= static_cast<std::uint32_t>(h - 'a' + 10);
                        else if (h >= 'A' && h <= 'F')
                            cp |= static_cast<std::uint32_t>(h - 'A' + 10);
                        else
                            return false;
                    }
                    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
                    detail::append_utf8(out, cp);
                    break;
                }
                default:
                    return false;
            }
        }
        return false;
    }

    std::string_view text_;
    std::size_t pos_ = 0;
};

}  // namespace

std::string quote_key_segment(std::string_view name) {
    if (!name.empty() && std::all_of(name.begin(), name.end(), is_bare_char))
        return std::string(name);
    std::string out;
    detail::append_quoted(out, name);
    return out;
}

key_path::key_path(std::string_view text) {
    *this = parse(text).value();
}

result<key_path> key_path::parse(std::string_view text) {
    return path_parser(text).run();
}

void key_path::append_text(const segment& s) {
    if (s.is_index()) {
        text_ += '[';
        text_ += std::to_string(s.index());
        text_ += ']';
        return;
    }
    if (!text_.empty()) text_ += '.';
    text_ += quote_key_segment(s.name());
}

key_path& key_path::push_key(std::string name) {
    segments_.push_back(segment::key(std::move(name)));
    append_text(segments_.back());
    return *this;
}

key_path& key_path::push_index(std::size_t index) {
    segments_.push_back(segment::at(index));
    append_text(segments_.back());
    return *this;
}

key_path key_path::child(std::string name) const {
    key_path out = *this;
    out.push_key(std::move(name));
    return out;
}

key_path key_path::at(std::size_t index) const {
    key_path out = *this;
    out.push_index(index);
    return out;
}

key_path key_path::parent() const {
    key_path out;
    for (std::size_t i = 0; i + 1 < segments_.size(); ++i) {
        if (segments_[i].is_index())
            out.push_index(segments_[i].index());
        else
            out.push_key(segments_[i].name());
    }
    return out;
}

bool key_path::starts_with(const key_path& prefix) const noexcept {
    if (prefix.size() > size()) return false;
    return std::equal(prefix.segments_.begin(), prefix.segments_.end(), segments_.begin());
}

}  // namespace cfgreg
