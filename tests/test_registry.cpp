// SPDX-License-Identifier: MIT
// The registry on strings and in-memory layers: reads, layers, handles, snapshots, secrets.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cfgreg/registry.hpp"

#include "threads.hpp"

using namespace cfgreg;
using namespace std::chrono_literals;

namespace {

// A word-sized and a string-backed type whose converters throw on one number.
struct word_port {
    std::int32_t n = 0;
};
struct named_port {
    std::string name;
};
constexpr std::int64_t throwing_port_number = 13;

std::int64_t port_number(const value& v) {
    const std::int64_t n = convert<std::int64_t>(v).value();
    if (n == throwing_port_number) throw std::runtime_error("converter failed");
    return n;
}

}  // namespace

template <>
struct cfgreg::converter<word_port> {
    static result<word_port> from(const value& v) {
        return word_port{static_cast<std::int32_t>(port_number(v))};
    }
};
template <>
struct cfgreg::converter<named_port> {
    static result<named_port> from(const value& v) {
        return named_port{std::to_string(port_number(v))};
    }
};

namespace {

constexpr const char* app_toml = R"(
title = "demo"

[server]
port = 8080
host = "localhost"
timeout = "250ms"
ratio = 0.5
size = 9.0

[plugins."io.containerd.grpc.v1.cri"]
sandbox_image = "pause:3.9"

[a.b]
c = "dotted"

[a]
"b.c" = "quoted"

[[servers]]
host = "alpha"
ports = [80, 443]

[[servers]]
host = "beta"
ports = [8080]
)";

registry& loaded(registry& reg) {
    reg.load_string(app_toml, "app.toml").value();
    return reg;
}

}  // namespace

TEST_CASE("registry: reads leaves by canonical and quoted paths", "[registry]") {
    registry reg;
    loaded(reg);
    CHECK(reg.get<int>("server.port") == 8080);
    CHECK(reg.get<std::string>("'server'.\"host\"") == "localhost");
    CHECK(reg.get<std::string>(R"(plugins."io.containerd.grpc.v1.cri".sandbox_image)") ==
          "pause:3.9");
    CHECK(reg.get<std::string>("servers[1].host") == "beta");
    CHECK(reg.get<int>("servers[0].ports[1]") == 443);
}

TEST_CASE("registry: a quoted dotted key and the dotted path stay apart", "[registry]") {
    registry reg;
    loaded(reg);
    CHECK(reg.get<std::string>("a.b.c") == "dotted");
    CHECK(reg.get<std::string>("a.\"b.c\"") == "quoted");
    CHECK(reg.keys("a") == std::vector<std::string>{"a.b.c", "a.\"b.c\""});
}

TEST_CASE("registry: keys are case-sensitive", "[registry]") {
    registry reg;
    loaded(reg);
    CHECK_FALSE(reg.get<int>("Server.Port"));
    CHECK(reg.read<int>("Server.Port").code() == errc::missing);
}

TEST_CASE("registry: missing, type mismatch and out of range are told apart", "[registry]") {
    registry reg;
    loaded(reg);
    CHECK(reg.read<int>("server.nope").code() == errc::missing);
    CHECK(reg.read<int>("server.host").code() == errc::type_mismatch);
    CHECK(reg.read<std::uint8_t>("server.port").code() == errc::out_of_range);
    CHECK(reg.read<int>("server..port").code() == errc::invalid_key);
    // `size = 9.0` read as an integer is a mismatch, never a silent fallback.
    CHECK(reg.read<int>("server.size").code() == errc::type_mismatch);
    CHECK(reg.get_or<int>("server.size", 1) == 1);
    CHECK(reg.get<double>("server.size") == 9.0);
}

/// get<T> must give read<T>'s value, or nothing where read<T> fails.
template <class T>
void check_get_matches_read(const registry& reg, std::string_view key) {
    CAPTURE(key);
    const result<T> r = reg.read<T>(key);
    const std::optional<T> g = reg.get<T>(key);
    REQUIRE(g.has_value() == r.has_value());
    if (g) CHECK(*g == *r);
}

TEST_CASE("registry: get of an integral type follows read's rules on every path", "[registry]") {
    registry reg;
    loaded(reg);
    reg.set("server.debug", true).value();
    reg.set("server.offset", std::int64_t{-5}).value();
    // Canonical keys take the lock-free path; the others are canonicalized first.
    for (const char* key :
         {"server.port", "'server'.\"port\"", "server.debug", "'server'.debug", "server.offset",
          "server.host", "server.size", "server.nope", "servers[0].ports[0]", "servers[0].ports[1]",
          "servers", "server", "server..port"}) {
        check_get_matches_read<bool>(reg, key);
        check_get_matches_read<std::int8_t>(reg, key);
        check_get_matches_read<std::uint8_t>(reg, key);
        check_get_matches_read<std::uint16_t>(reg, key);
        check_get_matches_read<int>(reg, key);
        check_get_matches_read<unsigned>(reg, key);
        check_get_matches_read<std::int64_t>(reg, key);
        check_get_matches_read<std::uint64_t>(reg, key);
    }
    CHECK(reg.get<std::uint16_t>("server.port") == std::uint16_t{8080});
    CHECK_FALSE(reg.get<std::uint8_t>("server.port"));
    CHECK_FALSE(reg.get<bool>("server.port"));
    CHECK(reg.get<bool>("'server'.debug") == true);
    CHECK_FALSE(reg.get<int>("server.debug"));
    CHECK(reg.get<int>("server.offset") == -5);
    CHECK_FALSE(reg.get<unsigned>("server.offset"));
    CHECK(reg.get<std::int8_t>("servers[0].ports[0]") == std::int8_t{80});
}

TEST_CASE("registry: contains finds leaves, tables and arrays by any spelling", "[registry]") {
    registry reg;
    loaded(reg);
    for (const char* key : {"server.port", "'server'.port", "server", "'server'", "servers",
                            "servers[1]", "\"servers\"[1].host", "a.\"b.c\"", "a.b.c"})
        CHECK(reg.contains(key));
    // `serv` is a prefix of `server` as text, not as a path.
    for (const char* key : {"serv", "server.port.x", "servers[2]", "server..port", "a.b.c.d"})
        CHECK_FALSE(reg.contains(key));
}

TEST_CASE("registry: require throws with key, types and source", "[registry]") {
    registry reg;
    loaded(reg);
    CHECK(reg.require<int>("server.port") == 8080);
    try {
        (void)reg.require<int>("server.host");
        FAIL("require did not throw");
    } catch (const error& e) {
        CHECK(e.code() == errc::type_mismatch);
        const std::string what = e.what();
        CHECK(what.find("server.host") != std::string::npos);
        CHECK(what.find("expected integer") != std::string::npos);
        CHECK(what.find("found string") != std::string::npos);
        CHECK(what.find("app.toml:6") != std::string::npos);
    }
    CHECK_THROWS_AS(reg.require<int>("missing.key"), error);
}

TEST_CASE("registry: conversions to durations, vectors and tables", "[registry]") {
    registry reg;
    loaded(reg);
    CHECK(reg.get<std::chrono::milliseconds>("server.timeout") == 250ms);
    CHECK(reg.get<std::vector<int>>("servers[0].ports") == std::vector<int>{80, 443});
    const auto server = reg.get<value>("server");
    REQUIRE(server);
    CHECK(server->is_table());
    CHECK(*server->find("port")->as_integer() == 8080);
    const auto servers = reg.get<value>("servers");
    REQUIRE(servers);
    CHECK(servers->as_array()->size() == 2);
    CHECK(reg.contains("servers"));
    CHECK_FALSE(reg.contains("serverz"));
}

TEST_CASE("registry: lists keys under a prefix in key order", "[registry]") {
    registry reg;
    loaded(reg);
    CHECK(reg.keys("servers[0]") == std::vector<std::string>{"servers[0].host",
                                                             "servers[0].ports[0]",
                                                             "servers[0].ports[1]"});
    CHECK(reg.keys("").size() == 14);
}

TEST_CASE("registry: layers resolve defaults < files < env < runtime", "[registry]") {
    registry reg;
    reg.set_default("server.port", 1).value();
    reg.set_default("server.workers", 4).value();
    CHECK(reg.get<int>("server.port") == 1);
    loaded(reg);
    CHECK(reg.get<int>("server.port") == 8080);
    CHECK(reg.get<int>("server.workers") == 4);
    reg.load_string("[server]\nport = 8081\n", "override.toml").value();
    CHECK(reg.get<int>("server.port") == 8081);
    reg.load_env("APP", {{"APP__SERVER__PORT", "9090"}}).value();
    CHECK(reg.get<int>("server.port") == 9090);
    reg.set("server.port", 7000).value();
    CHECK(reg.get<int>("server.port") == 7000);
    reg.unset("server.port").value();
    CHECK(reg.get<int>("server.port") == 9090);
}

TEST_CASE("registry: a later file's array replaces an earlier one whole", "[registry]") {
    registry reg;
    reg.load_string("ports = [1, 2, 3]\n[t]\nx = 1\n", "base.toml").value();
    reg.load_string("ports = [9]\n[t]\ny = 2\n", "over.toml").value();
    CHECK(reg.get<std::vector<int>>("ports") == std::vector<int>{9});
    CHECK(reg.get<int>("t.x") == 1);  // tables merge
    CHECK(reg.get<int>("t.y") == 2);
}

TEST_CASE("registry: reloading a name replaces its layer in place", "[registry]") {
    registry reg;
    reg.load_string("a = 1\nb = 2\n", "one.toml").value();
    reg.load_string("a = 10\n", "two.toml").value();
    reg.load_string("a = 5\n", "one.toml").value();
    CHECK(reg.get<int>("a") == 10);
    CHECK(reg.read<int>("b").code() == errc::missing);
}

TEST_CASE("registry: a failed load leaves the registry exactly as it was", "[registry]") {
    registry reg;
    loaded(reg);
    const auto before = reg.dump(dump_format::tagged_json);
    const auto generation = reg.generation();
    const status r = reg.load_string("[server]\nname = \"beta\"\nport = = 1\n", "bad.toml");
    REQUIRE_FALSE(r);
    CHECK(r.code() == errc::parse_error);
    CHECK(r.error().where.source == "bad.toml");
    CHECK(r.error().where.line == 3);
    CHECK(r.error().where.column == 8);
    CHECK(reg.dump(dump_format::tagged_json) == before);
    CHECK(reg.generation() == generation);
    CHECK(reg.load_file("/nonexistent/x.toml").code() == errc::io_error);
    // Fault reproduced: a directory loaded as an empty document, dropping that layer's keys.
    CHECK(reg.load_file(std::filesystem::temp_directory_path()).code() == errc::io_error);
    CHECK(reg.dump(dump_format::tagged_json) == before);
}

TEST_CASE("registry: date-times far from 1970 convert exactly or report out of range",
          "[registry]") {
    // Fault reproduced: nanosecond arithmetic overflowed and returned a wrong date in 1816.
    registry reg;
    REQUIRE(
        reg.load_string("odt = 9999-12-31T23:59:59Z\nldt = 1000-01-01T00:00:00\n"
                        "near = 2024-05-06T07:08:09.5Z\n",
                        "dates.toml"));
    using namespace std::chrono;
    const auto far = reg.read<sys_seconds>("odt");
    REQUIRE(far);
    CHECK(far->time_since_epoch() == seconds{253402300799});
    CHECK(reg.read<sys_time<nanoseconds>>("odt").code() == errc::out_of_range);
    CHECK(reg.read<std::chrono::local_time<nanoseconds>>("ldt").code() == errc::out_of_range);
    REQUIRE(reg.read<std::chrono::local_seconds>("ldt"));
    CHECK(reg.read<std::chrono::local_seconds>("ldt")->time_since_epoch() == seconds{-30610224000});
    const auto near = reg.read<sys_time<milliseconds>>("near");
    REQUIRE(near);
    CHECK(near->time_since_epoch() == milliseconds{1714979289500});
    CHECK(reg.read<sys_seconds>("near").code() == errc::out_of_range);
}

TEST_CASE("registry: load_env maps double underscores and matches case", "[registry]") {
    registry reg;
    reg.load_string("[database]\ndatabase_type = \"pg\"\n[Mixed]\nCamelKey = 1\n", "f").value();
    reg.load_env("APP", {{"APP__DATABASE__DATABASE_TYPE", "mysql"},
                         {"APP__SERVER__PORT", "9090"},
                         {"APP__MIXED__CAMELKEY", "2"},
                         {"APP__LIST", "[1, 2]"},
                         {"APP__WHEN", "1979-05-27"},
                         {"APP__TEXT", "hello world"},
                         {"OTHER__X", "1"},
                         {"APP__BAD____X", "1"}})
        .value();
    CHECK(reg.get<std::string>("database.database_type") == "mysql");
    CHECK(reg.get<int>("server.port") == 9090);
    CHECK(reg.get<int>("Mixed.CamelKey") == 2);
    CHECK(reg.get<std::vector<int>>("list") == std::vector<int>{1, 2});
    CHECK(reg.get<local_date>("when") == local_date{1979, 5, 27});
    CHECK(reg.get<std::string>("text") == "hello world");
    CHECK_FALSE(reg.contains("x"));
    CHECK(reg.describe("server.port").effective->where.source == "APP__SERVER__PORT");
}

TEST_CASE("registry: describe names the layer, the source and what is shadowed", "[registry]") {
    registry reg;
    reg.set_default("server.port", 1).value();
    loaded(reg);
    reg.set("server.port", 7).value();
    const description d = reg.describe("server.port");
    REQUIRE(d.found);
    REQUIRE(d.effective);
    CHECK(d.effective->from == layer::runtime);
    CHECK(d.effective->val == value(7));
    REQUIRE(d.shadowed.size() == 2);
    CHECK(d.shadowed[0].from == layer::file);
    CHECK(d.shadowed[0].where.to_string() == "app.toml:5:8");
    CHECK(d.shadowed[1].from == layer::defaults);
    CHECK(d.to_string().find("shadows 8080  (file, app.toml:5:8)") != std::string::npos);
    CHECK_FALSE(reg.describe("nope").found);
}

TEST_CASE("registry: secret values are never printed", "[registry]") {
    registry reg;
    reg.load_string("[db]\npassword = \"hunter2\"\nuser = \"me\"\n", "s.toml").value();
    reg.mark_secret("db.password").value();
    CHECK(reg.is_secret("db.password"));
    CHECK_FALSE(reg.is_secret("db.user"));
    CHECK(reg.get<std::string>("db.password") == "hunter2");  // reading is allowed
    for (auto f : {dump_format::toml, dump_format::json, dump_format::tagged_json})
        CHECK(reg.dump(f).find("hunter2") == std::string::npos);
    CHECK(reg.dump(dump_format::toml, true).find("hunter2") != std::string::npos);
    const description d = reg.describe("db.password");
    CHECK(d.secret);
    CHECK(d.to_string().find("hunter2") == std::string::npos);
    const auto r = reg.read<int>("db.password");
    CHECK(r.error().message.find("hunter2") == std::string::npos);
}

TEST_CASE("registry: set replaces a subtree; unset uncovers lower layers", "[registry]") {
    registry reg;
    loaded(reg);
    reg.set("servers", value(array{value(table{{"host", "solo"}})})).value();
    CHECK(reg.get<std::string>("servers[0].host") == "solo");
    CHECK_FALSE(reg.contains("servers[1]"));
    reg.unset("servers").value();
    CHECK(reg.get<std::string>("servers[1].host") == "beta");
    CHECK(reg.set("a..b", 1).code() == errc::invalid_key);
}

TEST_CASE("registry: a scalar and a table at one key shadow each other by layer", "[registry]") {
    registry reg;
    reg.load_string("[a]\nb = 1\n", "f").value();
    reg.set("a", 5).value();
    CHECK(reg.get<int>("a") == 5);
    CHECK_FALSE(reg.contains("a.b"));
    reg.unset("a").value();
    CHECK(reg.get<int>("a.b") == 1);
}

TEST_CASE("registry: generation grows only when an effective value changes", "[registry]") {
    registry reg;
    const auto g0 = reg.generation();
    reg.set("k", 1).value();
    CHECK(reg.generation() == g0 + 1);
    reg.set("k", 1).value();
    CHECK(reg.generation() == g0 + 1);
    reg.set("k", 2).value();
    CHECK(reg.generation() == g0 + 2);
}

TEST_CASE("registry: a setting follows set, unset, delete and re-add", "[registry]") {
    registry reg;
    setting<int> port = reg.setting<int>("server.port", 1);
    setting<std::string> host = reg.setting<std::string>("server.host", "none");
    setting<std::vector<int>> ports = reg.setting<std::vector<int>>("ports", {});
    CHECK(port.get() == 1);
    CHECK(port.state() == errc::missing);
    CHECK(port.key() == "server.port");

    loaded(reg);
    CHECK(port.get() == 8080);
    CHECK(port.state() == errc{});
    CHECK(host.get() == "localhost");
    reg.set("server.port", 9).value();
    CHECK(port.get() == 9);
    reg.set("server.port", "text").value();
    CHECK(port.get() == 1);
    CHECK(port.state() == errc::type_mismatch);
    reg.unset("server.port").value();
    CHECK(port.get() == 8080);
    reg.load_string("title = 1\n", "app.toml").value();  // reload without the key
    CHECK(port.get() == 1);
    CHECK(host.get() == "none");
    // visit reads the same value in place and returns what the callback returns.
    CHECK(host.visit([](const std::string& h) { return h.size(); }) == 4);
    CHECK(port.visit([](int p) { return p + 1; }) == 2);
    reg.set("server.host", "example.org").value();
    std::string seen;
    host.visit([&](const std::string& h) { seen = h; });
    CHECK(seen == "example.org");
    loaded(reg);  // re-add
    CHECK(port.get() == 8080);

    reg.set("ports", value(array{1, 2})).value();
    CHECK(ports.get() == std::vector<int>{1, 2});
    reg.set("ports[1]", 5).value();
    CHECK(ports.get() == std::vector<int>{1, 5});
}

TEST_CASE("registry: a setting whose conversion throws reports it and serves the fallback",
          "[registry]") {
    // Fault reproduced: the handle served its fallback while state() still reported success.
    registry reg;
    setting<word_port> small = reg.setting<word_port>("port", word_port{1});
    setting<named_port> large = reg.setting<named_port>("port", named_port{"fallback"});
    reg.set("port", 80).value();
    CHECK(small.get().n == 80);
    CHECK(small.state() == errc{});
    CHECK(large.get().name == "80");
    CHECK(large.state() == errc{});

    reg.set("port", throwing_port_number).value();
    CHECK(small.get().n == 1);
    CHECK(small.state() == errc::invalid_argument);
    CHECK(large.get().name == "fallback");
    CHECK(large.state() == errc::invalid_argument);

    reg.set("port", 81).value();
    CHECK(small.get().n == 81);
    CHECK(small.state() == errc{});
}

TEST_CASE("registry: a setting outlives its registry with the last value", "[registry]") {
    std::optional<setting<int>> handle;
    {
        registry reg;
        reg.set("k", 3).value();
        handle = reg.setting<int>("k", 0);
    }
    CHECK(handle->get() == 3);
}

TEST_CASE("registry: a snapshot is one generation, in key order", "[registry]") {
    registry reg;
    reg.set("b", 1).value();
    reg.set("a[10]", 1).value();
    reg.set("a[2]", 1).value();
    const snapshot s = reg.snapshot();
    reg.set("b", 2).value();
    CHECK(s.get<int>("b") == 1);
    CHECK(reg.get<int>("b") == 2);
    CHECK(s.generation() + 1 == reg.generation());
    std::vector<std::string> order;
    for (const snapshot_entry& e : s)
        order.push_back(e.path.str());
    CHECK(order == std::vector<std::string>{"a[2]", "a[10]", "b"});
}

TEST_CASE("registry: dump then load gives back the same values and types", "[registry]") {
    registry reg;
    loaded(reg);
    reg.set("when", value(offset_date_time{{1979, 5, 27}, {7, 32, 0, 0}, -480})).value();
    reg.set("empty", value(table{})).value();
    reg.set("nothing", value(array{})).value();
    registry again;
    again.load_string(reg.dump(), "dump.toml").value();
    CHECK(again.dump(dump_format::tagged_json) == reg.dump(dump_format::tagged_json));
    CHECK(again.get<double>("server.size") == 9.0);
    CHECK(again.read<int>("server.size").code() == errc::type_mismatch);
}

TEST_CASE("registry: global is one instance", "[registry]") {
    CHECK(&registry::global() == &registry::global());
}

// Torn-read pattern: writers flip between two consistent states; readers must never
// see a value that is in neither, through get, a setting or a snapshot.
TEST_CASE("registry: concurrent readers never see a torn or foreign value", "[registry]") {
    registry reg;
    reg.load_string("[s]\na = 1\nb = 1\nname = \"one\"\n", "f.toml").value();
    setting<int> a = reg.setting<int>("s.a", -1);
    setting<std::string> name = reg.setting<std::string>("s.name", "?");
    std::atomic<int> bad{0};

    const auto read = [&] {
        const int x = reg.get_or<int>("s.a", -1);
        const int y = a.get();
        const std::string n = name.get();
        const bool in_place_ok = name.visit([](const std::string& v) {
            return v == "one" || v == "two";
        }) && a.visit([](int v) { return v == 1 || v == 2; });
        const snapshot s = reg.snapshot();
        const bool snap_ok = s.get<int>("s.a") == s.get<int>("s.b");
        if ((x != 1 && x != 2) || (y != 1 && y != 2) || (n != "one" && n != "two") || !snap_ok ||
            !in_place_ok)
            bad.fetch_add(1);
    };
    cfgreg_test::read_during(2, read, [&] {
        for (int i = 0; i < 300; ++i) {
            if (i % 2 == 0)
                reg.load_string("[s]\na = 2\nb = 2\nname = \"two\"\n", "f.toml").value();
            else
                reg.load_string("[s]\na = 1\nb = 1\nname = \"one\"\n", "f.toml").value();
        }
    });
    CHECK(bad.load() == 0);
}

// The map of leaves points into the layers' lists: a reload that changes no value
// (only lines move) must still repoint it before the old list can be freed.
TEST_CASE("registry: reloads that change no value keep get() reading live leaves", "[registry]") {
    registry reg;
    const std::string long_text(40, 'x');  // outside the small-string buffer
    const std::string first = "[s]\na = 7\nt = \"" + long_text + "\"\n";
    const std::string moved = "\n\n[s]\n\na = 7\n\nt = \"" + long_text + "\"\n";
    reg.load_string(first, "f.toml").value();
    std::atomic<int> bad{0};

    const std::uint64_t generation = reg.generation();
    const auto read = [&] {
        if (reg.get_or<int>("s.a", -1) != 7 || reg.get_or<std::string>("s.t", "") != long_text)
            bad.fetch_add(1);
    };
    cfgreg_test::read_during(2, read, [&] {
        for (int i = 0; i < 300; ++i)
            reg.load_string(i % 2 == 0 ? moved : first, "f.toml").value();
    });
    CHECK(bad.load() == 0);
    CHECK(reg.generation() == generation);
    CHECK(reg.describe("s.a").effective->where.line == 2);  // from `first`, loaded last
}
