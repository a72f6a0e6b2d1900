// SPDX-License-Identifier: MIT
// `cfgreg::value`: its TOML types, conversions to C++ types, and literals.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "cfgreg/value.hpp"

using namespace cfgreg;
using namespace std::chrono_literals;

TEST_CASE("value: holds every TOML type and reports it", "[value]") {
    CHECK(value(true).type() == value_type::boolean);
    CHECK(value(std::int64_t{7}).type() == value_type::integer);
    CHECK(value(7).type() == value_type::integer);
    CHECK(value(1.5).type() == value_type::floating);
    CHECK(value("x").type() == value_type::string);
    CHECK(value(local_date{2024, 2, 29}).type() == value_type::local_date);
    CHECK(value(local_time{7, 32, 0, 0}).type() == value_type::local_time);
    CHECK(value(local_date_time{}).type() == value_type::local_date_time);
    CHECK(value(offset_date_time{}).type() == value_type::offset_date_time);
    CHECK(value(array{1, 2}).type() == value_type::array);
    CHECK(value(table{{"a", 1}}).type() == value_type::table);
    CHECK(value().is_table());
    CHECK(value().as_table()->empty());
}

TEST_CASE("value: integers convert with a range check, never truncation", "[value]") {
    const value big(std::int64_t{300});
    CHECK(convert<int>(big).value() == 300);
    CHECK(convert<std::uint8_t>(big).code() == errc::out_of_range);
    CHECK(convert<std::int8_t>(value(-129)).code() == errc::out_of_range);
    CHECK(convert<std::uint32_t>(value(-1)).code() == errc::out_of_range);
    CHECK(convert<std::uint64_t>(value(std::numeric_limits<std::int64_t>::max())).has_value());
    CHECK_THROWS_AS(value(std::numeric_limits<std::uint64_t>::max()), error);
}

// A character used to be stored as its code point; it is no number, so no value is made of it.
static_assert(!std::is_constructible_v<value, char>);
static_assert(!std::is_constructible_v<value, const wchar_t>);
static_assert(!std::is_constructible_v<value, char8_t>);
static_assert(std::is_constructible_v<value, unsigned char>);
static_assert(std::is_constructible_v<value, short>);

TEST_CASE("value: a float read as an integer is a type mismatch", "[value]") {
    const auto r = convert<int>(value(9.0));
    REQUIRE_FALSE(r);
    CHECK(r.code() == errc::type_mismatch);
    CHECK(r.error().message == "expected integer (int32), found float");
}

TEST_CASE("value: integers convert to floating point", "[value]") {
    CHECK(convert<double>(value(3)).value() == 3.0);
    CHECK(convert<float>(value(2.5)).value() == 2.5f);
    CHECK(convert<float>(value(1e300)).code() == errc::out_of_range);
    CHECK(std::isinf(convert<float>(value(INFINITY)).value()));
}

TEST_CASE("value: strings, booleans and mismatches", "[value]") {
    CHECK(convert<std::string>(value("hi")).value() == "hi");
    CHECK(convert<bool>(value(true)).value());
    CHECK(convert<std::string>(value(1)).code() == errc::type_mismatch);
    CHECK(convert<bool>(value("true")).code() == errc::type_mismatch);
}

TEST_CASE("value: duration strings convert to std::chrono", "[value]") {
    CHECK(convert<std::chrono::milliseconds>(value("250ms")).value() == 250ms);
    CHECK(convert<std::chrono::seconds>(value("10s")).value() == 10s);
    CHECK(convert<std::chrono::minutes>(value("1h30m")).value() == 90min);
    CHECK(convert<std::chrono::milliseconds>(value("1.5s")).value() == 1500ms);
    CHECK(convert<std::chrono::nanoseconds>(value("2us")).value() == 2us);
    CHECK(convert<std::chrono::hours>(value("2d")).value() == 48h);
    CHECK(convert<std::chrono::milliseconds>(value("-2m")).value() == -120000ms);
    CHECK(convert<std::chrono::duration<double>>(value("250ms")).value().count() == 0.25);
    CHECK(convert<std::chrono::seconds>(value("250ms")).code() == errc::out_of_range);
    CHECK(convert<std::chrono::seconds>(value("10")).code() == errc::type_mismatch);
    CHECK(convert<std::chrono::seconds>(value("10x")).code() == errc::type_mismatch);
    CHECK(convert<std::chrono::seconds>(value("")).code() == errc::type_mismatch);
    CHECK(convert<std::chrono::seconds>(value(10)).code() == errc::type_mismatch);
    CHECK(parse_duration("300000000000h").code() == errc::out_of_range);
}

TEST_CASE("value: dates and times convert to std::chrono where exact", "[value]") {
    using namespace std::chrono;
    const value date(local_date{1979, 5, 27});
    CHECK(convert<year_month_day>(date).value() == 1979y / May / 27d);
    CHECK(convert<sys_days>(date).value() == sys_days{1979y / May / 27d});

    const value odt(offset_date_time{{1979, 5, 27}, {7, 32, 0, 500'000'000}, -8 * 60});
    const auto tp = convert<sys_time<milliseconds>>(odt).value();
    CHECK(tp == sys_days{1979y / May / 27d} + 15h + 32min + 500ms);
    CHECK(convert<sys_seconds>(odt).code() == errc::out_of_range);

    const value ldt(local_date_time{{2000, 1, 2}, {3, 4, 5, 0}});
    CHECK(convert<local_seconds>(ldt).value() == local_days{2000y / January / 2d} + 3h + 4min + 5s);
    CHECK(convert<sys_seconds>(ldt).code() == errc::type_mismatch);
}

TEST_CASE("value: arrays convert to std::vector element by element", "[value]") {
    const value ports(array{80, 443});
    CHECK(convert<std::vector<int>>(ports).value() == std::vector<int>{80, 443});
    const auto bad = convert<std::vector<std::uint8_t>>(value(array{1, 300}));
    CHECK(bad.code() == errc::out_of_range);
    CHECK(bad.error().message.starts_with("element [1]: "));
    CHECK(convert<std::vector<int>>(value(1)).code() == errc::type_mismatch);
}

TEST_CASE("value: tables are sorted, unique and searchable", "[value]") {
    const value t(table{{"b", 2}, {"a", 1}});
    REQUIRE(t.as_table()->size() == 2);
    CHECK(t.as_table()->front().first == "a");
    CHECK(*t.find("b")->as_integer() == 2);
    CHECK(t.find("c") == nullptr);
    CHECK_THROWS_AS(value(table{{"a", 1}, {"a", 2}}), error);
}

TEST_CASE("value: equality is deep and same_as treats NaN as equal", "[value]") {
    CHECK(value(array{1, "x"}) == value(array{1, "x"}));
    CHECK_FALSE(value(array{1}) == value(array{1.0}));
    CHECK_FALSE(value(NAN) == value(NAN));
    CHECK(value(NAN).same_as(value(NAN)));
    CHECK_FALSE(value(0.0).same_as(value(-0.0)));
}

TEST_CASE("value: TOML and JSON literals keep types", "[value]") {
    CHECK(value(1.0).to_toml() == "1.0");
    CHECK(value(-0.0).to_toml() == "-0.0");
    CHECK(value(1e100).to_toml() == "1e+100");
    CHECK(value(INFINITY).to_toml() == "inf");
    CHECK(value("a\"b\n\x01").to_toml() == "\"a\\\"b\\n\\u0001\"");
    CHECK(value(local_time{7, 32, 0, 120'000'000}).to_toml() == "07:32:00.12");
    CHECK(value(offset_date_time{{1979, 5, 27}, {7, 32, 0, 0}, -480}).to_toml() ==
          "1979-05-27T07:32:00-08:00");
    CHECK(value(table{{"a b", 1}, {"c", array{}}}).to_toml() == "{ \"a b\" = 1, c = [] }");
    CHECK(value(table{{"x", 1.0}, {"d", local_date{2024, 1, 2}}}).to_json() ==
          R"({"d":"2024-01-02","x":1.0})");
}

TEST_CASE("value: parse_value reads one TOML literal", "[value]") {
    CHECK(parse_value("42").value() == value(42));
    CHECK(parse_value("[1, 2]").value() == value(array{1, 2}));
    CHECK(parse_value("{ a = 1 }").value() == value(table{{"a", 1}}));
    CHECK(parse_value("1979-05-27").value() == value(local_date{1979, 5, 27}));
    CHECK(parse_value("hello").code() == errc::parse_error);
    CHECK(parse_value("1\nb = 2").code() == errc::parse_error);
}
