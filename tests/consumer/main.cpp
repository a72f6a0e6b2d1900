// SPDX-License-Identifier: MIT
// Uses an installed cfgreg through find_package; exits non-zero if the map misbehaves.
#include <cfgreg/sync_map.hpp>

#include <cstdio>
#include <string>
#include <string_view>

int main() {
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

    const bool ok = http == 8080 && !had_admin && admin == 9000 && sum == 8080 + 8443 + 9000 &&
                    !ports.load("gopher").has_value();
    std::printf("cfgreg consumer: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
