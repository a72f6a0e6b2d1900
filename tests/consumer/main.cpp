// SPDX-License-Identifier: MIT
// Uses an installed cfgreg through find_package; exits non-zero if the registry or map misbehaves.
#include <cfgreg/registry.hpp>
#include <cfgreg/sync_map.hpp>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace {

bool registry_works() {
    cfgreg::registry reg;
    const cfgreg::status loaded = reg.load_string("[server]\nport = 8080\n", "consumer.toml");
    const std::optional<std::int64_t> port = reg.get<std::int64_t>("server.port");
    std::printf("cfgreg consumer: server.port = %lld\n",
                port ? static_cast<long long>(*port) : -1LL);
    return static_cast<bool>(loaded) && port == 8080 && !reg.get<std::int64_t>("server.host");
}

bool map_works() {
    cfgreg::sync_map<std::string, int> ports;
    ports.store("http", 8080);
    ports.store("https", 8443);

    const auto [admin, had_admin] = ports.load_or_store("admin", 9000);
    const auto http = ports.load(std::string_view("http"));

    int sum = 0;
    ports.range([&](const std::string&, const int& port) {
        sum += port;
        return true;
    });
    return http == 8080 && !had_admin && admin == 9000 && sum == 8080 + 8443 + 9000 &&
           !ports.load("gopher").has_value();
}

}  // namespace

int main() {
    const bool ok = registry_works() && map_works();
    std::printf("cfgreg consumer: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
