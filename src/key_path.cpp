// SPDX-License-Identifier: MIT
// Parsing and printing key paths.
#include "cfgreg/key_path.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>

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

namespace {

bool is_bare_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/// True when `name` is written without quotes in a key path.
bool is_bare_key(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), is_bare_char);
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
    if (is_bare_key(name)) return std::string(name);
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

namespace {

using offset = std::uint32_t;

/// The extent of a segment's token in a path's text.
struct token {
    offset begin;
    offset end;
};

// Offsets take `width` bytes each: 2 while the text fits 16 bits, else 4.
offset end_at(const std::string& meta, unsigned width, std::size_t i) noexcept {
    if (width == sizeof(std::uint16_t)) {
        std::uint16_t end;
        std::memcpy(&end, meta.data() + i * width, sizeof end);
        return end;
    }
    offset end;
    std::memcpy(&end, meta.data() + i * width, sizeof end);
    return end;
}

// A token begins where the one before it ends, past a `.` before a key.
token token_at(const std::string& text, const std::string& meta, unsigned width,
               std::size_t i) noexcept {
    const offset end = end_at(meta, width, i);
    if (i == 0) return {0, end};
    const offset previous = end_at(meta, width, i - 1);
    return {text[previous] == '.' ? previous + 1 : previous, end};
}

}  // namespace

key_path::segment key_path::operator[](std::size_t i) const noexcept {
    const token t = token_at(text_, meta_, width_, i);
    const char first = text_[t.begin];
    if (first == '[') {
        std::size_t index = 0;
        for (std::uint32_t k = t.begin + 1; k + 1 < t.end; ++k)
            index = index * 10 + static_cast<std::size_t>(text_[k] - '0');
        return segment::at(index);
    }
    if (first != '"') return segment::key(std::string_view(text_).substr(t.begin, t.end - t.begin));
    // A quoted key: its unquoted name is the n-th of the names after the records.
    std::size_t n = 0;
    for (std::size_t j = 0; j < i; ++j)
        n += text_[token_at(text_, meta_, width_, j).begin] == '"' ? 1 : 0;
    std::size_t at = size_ * width_;
    for (;; --n) {
        std::uint32_t length;
        std::memcpy(&length, meta_.data() + at, sizeof length);
        at += sizeof length;
        if (n == 0) return segment::key(std::string_view(meta_).substr(at, length));
        at += length;
    }
}

std::strong_ordering operator<=>(const key_path& a, const key_path& b) noexcept {
    const std::size_t n = std::min(a.size(), b.size());
    const std::string_view at(a.text_);
    const std::string_view bt(b.text_);
    for (std::size_t i = 0; i < n; ++i) {
        // Equal tokens are equal segments (the text is canonical): skip them unparsed.
        const token ta = token_at(a.text_, a.meta_, a.width_, i);
        const token tb = token_at(b.text_, b.meta_, b.width_, i);
        if (at.substr(ta.begin, ta.end - ta.begin) == bt.substr(tb.begin, tb.end - tb.begin))
            continue;
        return a[i] <=> b[i];
    }
    return a.size() <=> b.size();
}

void key_path::add_segment(std::string_view quoted_name, bool quoted) {
    if (width_ == sizeof(std::uint16_t) && text_.size() > UINT16_MAX) widen();
    const auto end = static_cast<offset>(text_.size());
    const auto narrow = static_cast<std::uint16_t>(end);
    meta_.insert(size_ * width_,
                 width_ == sizeof narrow ? reinterpret_cast<const char*>(&narrow)
                                         : reinterpret_cast<const char*>(&end),
                 width_);
    ++size_;
    if (!quoted) return;
    const auto length = static_cast<std::uint32_t>(quoted_name.size());
    meta_.append(reinterpret_cast<const char*>(&length), sizeof length);
    meta_.append(quoted_name);
}

void key_path::widen() {
    std::string wide;
    wide.reserve(meta_.size() + size_ * (sizeof(offset) - width_));
    for (std::size_t i = 0; i < size_; ++i) {
        const offset end = end_at(meta_, width_, i);
        wide.append(reinterpret_cast<const char*>(&end), sizeof end);
    }
    wide.append(meta_, size_ * width_);  // the quoted names
    meta_ = std::move(wide);
    width_ = sizeof(offset);
}

key_path& key_path::push_key(std::string_view name) {
    // `name` may view this path's own text (`p.push_key(p.back().name())`), which the
    // appends below can reallocate: take a copy first then.
    const auto inside = [&name](const std::string& s) {
        const std::less<const char*> before;
        return !name.empty() && !before(name.data(), s.data()) &&
               before(name.data(), s.data() + s.size());
    };
    if (inside(text_) || inside(meta_)) return push_key(std::string(name));
    if (!text_.empty()) text_ += '.';
    const bool bare = is_bare_key(name);
    if (bare)
        text_ += name;
    else
        detail::append_quoted(text_, name);
    add_segment(name, !bare);
    return *this;
}

key_path& key_path::push_index(std::size_t index) {
    text_ += '[';
    text_ += std::to_string(index);
    text_ += ']';
    add_segment({}, false);
    return *this;
}

void key_path::pop_back() noexcept {
    --size_;
    const token t = token_at(text_, meta_, width_, size_);
    if (text_[t.begin] == '"') {
        // Its name is the last one after the records.
        std::size_t at = (size_ + 1) * width_;
        std::size_t last = at;
        while (at < meta_.size()) {
            last = at;
            std::uint32_t length;
            std::memcpy(&length, meta_.data() + at, sizeof length);
            at += sizeof length + length;
        }
        meta_.resize(last);
    }
    meta_.erase(size_ * width_, width_);
    text_.resize(t.begin == 0 ? 0 : t.begin - (text_[t.begin] == '[' ? 0 : 1));
}

key_path key_path::child(std::string_view name) const {
    key_path out = *this;
    out.push_key(name);
    return out;
}

key_path key_path::at(std::size_t index) const {
    key_path out = *this;
    out.push_index(index);
    return out;
}

key_path key_path::parent() const {
    key_path out = *this;
    out.pop_back();
    return out;
}

bool key_path::starts_with(const key_path& prefix) const noexcept {
    // Canonical text tokenizes one way only, so a prefix of whole tokens is a
    // prefix of segments: the text must go on with a separator, or end.
    const std::size_t n = prefix.text_.size();
    if (prefix.size_ > size_ || text_.compare(0, n, prefix.text_) != 0) return false;
    return n == 0 || n == text_.size() || text_[n] == '.' || text_[n] == '[';
}

}  // namespace cfgreg
