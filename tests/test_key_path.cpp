// SPDX-License-Identifier: MIT
// Parsing, canonical text and ordering of key paths.
#include <catch2/catch.hpp>

#include <algorithm>
#include <iterator>
#include <string>
#include <vector>

#include "cfgreg/key_path.hpp"

using cfgreg::errc;
using cfgreg::key_path;

TEST_CASE("key_path: parses bare, quoted, literal and indexed segments", "[key_path]") {
    const key_path p(R"(plugins."io.containerd.grpc.v1.cri".sandbox_image)");
    REQUIRE(p.size() == 3);
    CHECK(p[1].name() == "io.containerd.grpc.v1.cri");
    CHECK(p.str() == R"(plugins."io.containerd.grpc.v1.cri".sandbox_image)");

    const key_path q("servers[1].host");
    REQUIRE(q.size() == 3);
    CHECK(q[1].is_index());
    CHECK(q[1].index() == 1);
    CHECK(q.str() == "servers[1].host");

    const key_path r("'quoted.literal'.x");
    CHECK(r[0].name() == "quoted.literal");
    CHECK(r.str() == "\"quoted.literal\".x");

    CHECK(key_path("a[0][2]").str() == "a[0][2]");
    CHECK(key_path(R"("\u00e9t\u00E9")").str() == "\"\xC3\xA9t\xC3\xA9\"");
}

TEST_CASE("key_path: every spelling of one key has one canonical text", "[key_path]") {
    CHECK(key_path(" a . \"b\" ").str() == "a.b");
    CHECK(key_path("'a'.b").str() == "a.b");
    CHECK(key_path("\"\"").str() == "\"\"");
    CHECK(key_path("a.\"b c\"").str() == "a.\"b c\"");
    CHECK(key_path("a.b") == key_path("\"a\".'b'"));
}

TEST_CASE("key_path: a quoted dotted segment never collides with the dotted path", "[key_path]") {
    const key_path quoted("a.\"b.c\"");
    const key_path dotted("a.b.c");
    CHECK(quoted != dotted);
    CHECK(quoted.str() != dotted.str());
    CHECK(quoted.size() == 2);
    CHECK(dotted.size() == 3);
}

TEST_CASE("key_path: keys are case-sensitive", "[key_path]") {
    CHECK(key_path("Server.Port") != key_path("server.port"));
}

TEST_CASE("key_path: invalid paths are rejected with invalid_key", "[key_path]") {
    for (const char* bad : {"a..b", "a.", ".a", "[0]", "a[x]", "a[1", "\"open", "a b", "a.'x",
                            "a[]", "\"\\q\"", "a[0]b"}) {
        INFO(bad);
        CHECK(key_path::parse(bad).code() == errc::invalid_key);
    }
    CHECK_THROWS_AS(key_path("a..b"), cfgreg::error);
    CHECK(key_path::parse("").value().empty());
}

TEST_CASE("key_path: order puts parents first and indices numerically", "[key_path]") {
    std::vector<key_path> v{key_path("a[10]"), key_path("b"), key_path("a[2]"), key_path("a"),
                            key_path("a[2].x")};
    std::sort(v.begin(), v.end());
    std::vector<std::string> texts;
    for (const auto& p : v)
        texts.push_back(p.str());
    CHECK(texts == std::vector<std::string>{"a", "a[2]", "a[2].x", "a[10]", "b"});
}

TEST_CASE("key_path: prefixes, parents and children", "[key_path]") {
    const key_path p("a.b[3].c");
    CHECK(p.starts_with(key_path("a.b")));
    CHECK(p.starts_with(key_path("a.b[3]")));
    CHECK(p.starts_with(key_path()));
    CHECK_FALSE(p.starts_with(key_path("a.bb")));
    CHECK(p.parent().str() == "a.b[3]");
    CHECK(key_path("x").child("y z").at(1).str() == "x.\"y z\"[1]");
}

TEST_CASE("key_path: pop_back undoes each push, quoted keys included", "[key_path]") {
    key_path p("a.\"x.y\"[12]");
    p.push_key("q r").push_key("z");
    CHECK(p.str() == "a.\"x.y\"[12].\"q r\".z");
    CHECK(p[3].name() == "q r");
    const std::vector<std::string> expected{"a.\"x.y\"[12].\"q r\"", "a.\"x.y\"[12]", "a.\"x.y\"",
                                            "a", ""};
    for (const std::string& text : expected) {
        p.pop_back();
        CHECK(p.str() == text);
        CHECK(p == key_path(text));
        if (!p.empty()) CHECK(p.back() == key_path(text).back());
    }
    CHECK(key_path("a.\"x.y\".b")[1].name() == "x.y");
    CHECK_FALSE(key_path("\"a.b\".c").starts_with(key_path("a")));
}

TEST_CASE("key_path: segments form a forward range of values", "[key_path]") {
    static_assert(std::forward_iterator<key_path::segment_range::iterator>);
    const key_path p("a[1].\"b c\"");
    std::vector<std::string> names;
    for (const key_path::segment s : p.segments())
        names.push_back(s.is_index() ? std::to_string(s.index()) : std::string(s.name()));
    CHECK(names == std::vector<std::string>{"a", "1", "b c"});
    CHECK(p.segments().size() == 3);
}

TEST_CASE("key_path: a text longer than 64 KiB keeps every segment", "[key_path]") {
    const std::string long_name(70000, 'k');
    key_path p("a.\"b c\"");
    p.push_key(long_name).push_index(3).push_key("d e");
    REQUIRE(p.size() == 5);
    CHECK(p[1].name() == "b c");
    CHECK(p[2].name() == long_name);
    CHECK(p[3].index() == 3);
    CHECK(p[4].name() == "d e");
    CHECK(p == key_path(p.str()));
    CHECK(p.starts_with(key_path("a.\"b c\"")));
    p.pop_back();
    p.pop_back();
    CHECK(p.back().name() == long_name);
    CHECK(p.str() == "a.\"b c\"." + long_name);
}

TEST_CASE("key_path: a segment's own name can be pushed onto its path", "[key_path]") {
    // The name views the path's own text, which the push reallocates.
    key_path bare("abcdefghijklmnopq");
    bare.push_key(bare.back().name());
    CHECK(bare.str() == "abcdefghijklmnopq.abcdefghijklmnopq");
    key_path quoted("\"a long quoted name.with a dot\"");
    quoted.push_key(quoted.back().name()).push_key(quoted[0].name());
    REQUIRE(quoted.size() == 3);
    CHECK(quoted[2].name() == "a long quoted name.with a dot");
    CHECK(quoted == key_path(quoted.str()));
}
